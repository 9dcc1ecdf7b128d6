import { join } from "node:path";
import { DEFAULT_PROBE_PORT, LAB_PREFIX_PATTERN, LAB_PREFIX_RULE, type LabNode } from "@flatnet/core";
import { LabError } from "./errors.ts";

/** Checks a lab prefix (`fn-`, `fn-e1-`): lower-case letters, digits and dashes, ending in a dash, at most 13 characters. */
export function validatePrefix(prefix: string): string {
  if (!LAB_PREFIX_PATTERN.test(prefix)) throw new LabError("ERR_LAB_INVALID_PREFIX", `prefix "${prefix}" is invalid; it must ${LAB_PREFIX_RULE}`);
  return prefix;
}

export const nodeName = (index: number): string => `node${index}`;

export const underlayNs = (prefix: string): string => `${prefix}underlay`;
export const routerNs = (prefix: string): string => `${prefix}router`;
export const nodeNs = (prefix: string, node: string): string => `${prefix}${node}`;
export const podName = (node: string, index: number): string => `pod-${node}-${index}`;
export const podNs = (prefix: string, node: string, index: number): string => `${prefix}${podName(node, index)}`;

/**
 * Whether a namespace name is one the lab with this prefix creates. Exact shapes only, so the default prefix `fn-`
 * never matches another lab's `fn-e1-node1` or a test's `fn-ta-x1`.
 */
export function isLabNamespace(prefix: string, name: string): boolean {
  return name.startsWith(prefix) && /^(underlay|router|node[1-9][0-9]{0,2}|pod-node[1-9][0-9]{0,2}-[1-9][0-9]{0,3})$/.test(name.slice(prefix.length));
}

/** A pod the lab is about to create: its name, namespace, node and index on the node. */
export interface PodSlot {
  name: string;
  netns: string;
  node: string;
  index: number;
}

/** Where a node's CNI installation lives in the lab: bin/, net.d/, cache/, ipam/. */
export const nodeCniRoot = (stateDir: string, node: string): string => join(stateDir, "cni", node);

/** The pod image and responder of `--runtime podman`, built once per lab. */
export const podImageDir = (stateDir: string): string => join(stateDir, "pod-image");

/** The control socket of a lab pod's probe responder. */
export const responderSocket = (stateDir: string, pod: string): string => join(stateDir, "probe", `${pod}.sock`);

/** The probe responder's flags for a lab pod (either runtime): its names, port, control socket, its node's pod CIDRs and IPs. */
export const responderArgs = (stateDir: string, pod: Pick<PodSlot, "name" | "node">, node?: Pick<LabNode, "podCidrs" | "underlayIps">): string[] => [
  "--pod", pod.name,
  "--node", pod.node,
  "--port", String(DEFAULT_PROBE_PORT),
  "--control-socket", responderSocket(stateDir, pod.name),
  ...(node?.podCidrs ?? []).flatMap((cidr) => ["--node-pod-cidr", cidr]),
  ...(node?.underlayIps ?? []).flatMap((ip) => ["--node-ip", ip]),
];
