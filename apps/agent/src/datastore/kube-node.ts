import type { V1Node } from "@kubernetes/client-node";
import type { NodeSnapshot } from "@flatnet/core";
import type { NodeRegistration } from "./datastore.ts";

// What each agent publishes on its own Node for its peers (flannel does the same with flannel.alpha.coreos.com/).
export const DEFAULT_ANNOTATION_PREFIX = "flatnet.io/";

export interface Annotations {
  underlayIps: string;
  vtepMac: string;
  underlayMtu: string;
  /** The network config's backend, for people and tools looking at Nodes (the VS Code extension shows it). */
  backend: string;
}

export function annotationKeys(prefix: string): Annotations {
  return { underlayIps: `${prefix}underlay-ips`, vtepMac: `${prefix}vtep-mac`, underlayMtu: `${prefix}underlay-mtu`, backend: `${prefix}backend` };
}

/** The annotations a registration publishes (values are strings, as Kubernetes requires). */
export function registrationAnnotations(node: NodeRegistration, prefix: string, backend: string): Record<string, string> {
  const keys = annotationKeys(prefix);
  return {
    [keys.underlayIps]: node.underlayIps.join(","),
    [keys.vtepMac]: node.vtepMac,
    ...(node.underlayMtu !== undefined ? { [keys.underlayMtu]: String(node.underlayMtu) } : {}),
    [keys.backend]: backend,
  };
}

export function podCidrsOf(node: V1Node): string[] {
  const list = node.spec?.podCIDRs ?? [];
  if (list.length > 0) return list;
  return node.spec?.podCIDR ? [node.spec.podCIDR] : [];
}

export type NodeView = { snapshot: NodeSnapshot; skipped?: never } | { snapshot?: never; skipped: { node: string; code: string; message: string } };

/**
 * A Node as the cluster model sees it: pod CIDRs from spec (kube-controller-manager or flatnet's allocator),
 * underlay IPs from flatnet's annotation or else the InternalIP addresses, readiness from the Ready condition.
 */
export function nodeView(node: V1Node, prefix: string): NodeView {
  const name = node.metadata?.name ?? "";
  const keys = annotationKeys(prefix);
  const annotations = node.metadata?.annotations ?? {};
  const podCidrs = podCidrsOf(node);
  if (podCidrs.length === 0) return { skipped: { node: name, code: "ERR_NO_POD_CIDR", message: `node "${name}" has no spec.podCIDRs yet` } };
  const published = annotations[keys.underlayIps];
  const underlayIps = published
    ? published.split(",").map((s) => s.trim()).filter(Boolean)
    : (node.status?.addresses ?? []).filter((a) => a.type === "InternalIP").map((a) => a.address);
  if (underlayIps.length === 0) {
    return { skipped: { node: name, code: "ERR_NO_UNDERLAY_IP", message: `node "${name}" has no ${keys.underlayIps} annotation and no InternalIP address` } };
  }
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  const vtepMac = annotations[keys.vtepMac];
  return {
    snapshot: {
      name,
      underlayIps,
      podCidrs,
      ...(vtepMac ? { vtepMac } : {}),
      ...(ready ? { ready: ready.status === "True" } : {}),
    },
  };
}

/** The fields of a Node that change the cluster model: used to ignore kubelet's status heartbeats. */
export function relevantFingerprint(node: V1Node, prefix: string): string {
  const annotations = Object.entries(node.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(prefix)).sort();
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "";
  const internal = (node.status?.addresses ?? []).filter((a) => a.type === "InternalIP").map((a) => a.address);
  return JSON.stringify([podCidrsOf(node), annotations, ready, internal, node.metadata?.deletionTimestamp ?? null]);
}
