import type { V1Node } from "@kubernetes/client-node";
import { annotationKeys, kubeNodeAddresses, kubeNodePodCidrs } from "@flatnet/core";
import type { NodeRegistration } from "./datastore.ts";

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

/** The fields of a Node that change the cluster model: used to ignore kubelet's status heartbeats. */
export function relevantFingerprint(node: V1Node, prefix: string): string {
  const annotations = Object.entries(node.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(prefix)).sort();
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "";
  return JSON.stringify([kubeNodePodCidrs(node), annotations, ready, kubeNodeAddresses(node), node.metadata?.deletionTimestamp ?? null]);
}
