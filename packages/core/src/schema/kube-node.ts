import { z } from "zod";
import { type CoreError, err, ok, type Result } from "../errors.ts";
import type { NodeSnapshot } from "../routes/types.ts";

/** Where each agent publishes on its own Node what its peers need (flannel does the same with flannel.alpha.coreos.com/). */
export const DEFAULT_ANNOTATION_PREFIX = "flatnet.io/";

/** The annotation keys under `prefix`: underlay IPs, VTEP MAC, underlay MTU and the backend (shown by the extension). */
export function annotationKeys(prefix: string): { underlayIps: string; vtepMac: string; underlayMtu: string; backend: string } {
  return { underlayIps: `${prefix}underlay-ips`, vtepMac: `${prefix}vtep-mac`, underlayMtu: `${prefix}underlay-mtu`, backend: `${prefix}backend` };
}

const nodeCondition = z.object({ type: z.string(), status: z.string() });
const nodeAddress = z.object({ type: z.string(), address: z.string() });

/** The fields of a Kubernetes v1 Node that flatnet reads; other fields pass unchecked. */
export const kubeNodeSchema = z.object({
  metadata: z.object({
    name: z.string().min(1),
    annotations: z.record(z.string(), z.string()).nullish(),
    labels: z.record(z.string(), z.string()).nullish(),
  }),
  spec: z.object({ podCIDR: z.string().nullish(), podCIDRs: z.array(z.string()).nullish(), unschedulable: z.boolean().nullish() }).nullish(),
  status: z.object({ addresses: z.array(nodeAddress).nullish(), conditions: z.array(nodeCondition).nullish() }).nullish(),
});

/** A Node as `kubeNodeSchema` checks it. */
export type KubeNode = z.infer<typeof kubeNodeSchema>;

/** What the Node functions read: a `KubeNode`, or a client library's V1Node, which fits this shape. */
export interface KubeNodeFields {
  metadata?: { name?: string; annotations?: Record<string, string> | null } | null;
  spec?: { podCIDR?: string | null; podCIDRs?: string[] | null; unschedulable?: boolean | null } | null;
  status?: { addresses?: z.infer<typeof nodeAddress>[] | null; conditions?: z.infer<typeof nodeCondition>[] | null } | null;
}

/**
 * The Node's pod CIDRs: `spec.podCIDRs`, or else the older single `spec.podCIDR`, or none.
 * @example kubeNodePodCidrs({ spec: { podCIDR: "10.244.1.0/24", podCIDRs: [] } }) // ["10.244.1.0/24"]
 */
export function kubeNodePodCidrs(node: KubeNodeFields): string[] {
  const list = node.spec?.podCIDRs ?? [];
  if (list.length > 0) return [...list];
  return node.spec?.podCIDR ? [node.spec.podCIDR] : [];
}

/** The Node's addresses of the given types (default InternalIP), in the order the Node lists them. */
export function kubeNodeAddresses(node: KubeNodeFields, types: readonly string[] = ["InternalIP"]): string[] {
  return (node.status?.addresses ?? []).filter((a) => types.includes(a.type)).map((a) => a.address);
}

/** The status of the Node's Ready condition: true, false (False or Unknown), or undefined when it has none. */
export function kubeNodeReady(node: KubeNodeFields): boolean | undefined {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  return ready ? ready.status === "True" : undefined;
}

/**
 * A Node as the cluster model sees it: pod CIDRs from spec (see kubeNodePodCidrs), underlay IPs from the
 * `<prefix>underlay-ips` annotation or else the InternalIP addresses, VTEP MAC from its annotation, readiness
 * from the Ready condition. Fails with ERR_NO_POD_CIDR or ERR_NO_UNDERLAY_IP naming the node.
 * @example nodeSnapshotFromKube({ metadata: { name: "n1" }, spec: { podCIDR: "10.244.1.0/24" }, status: { addresses: [{ type: "InternalIP", address: "172.31.0.11" }] } })
 */
export function nodeSnapshotFromKube(node: KubeNodeFields, prefix = DEFAULT_ANNOTATION_PREFIX): Result<NodeSnapshot, CoreError & { node: string }> {
  const name = node.metadata?.name ?? "";
  const keys = annotationKeys(prefix);
  const annotations = node.metadata?.annotations ?? {};
  const podCidrs = kubeNodePodCidrs(node);
  if (podCidrs.length === 0) return err({ node: name, code: "ERR_NO_POD_CIDR", message: `node "${name}" has no spec.podCIDRs yet` });
  const published = annotations[keys.underlayIps];
  const underlayIps = published ? published.split(",").map((s) => s.trim()).filter(Boolean) : kubeNodeAddresses(node);
  if (underlayIps.length === 0) {
    return err({ node: name, code: "ERR_NO_UNDERLAY_IP", message: `node "${name}" has no ${keys.underlayIps} annotation and no InternalIP address` });
  }
  const ready = kubeNodeReady(node);
  const vtepMac = annotations[keys.vtepMac];
  return ok({ name, underlayIps, podCidrs, ...(vtepMac ? { vtepMac } : {}), ...(ready !== undefined ? { ready } : {}) });
}
