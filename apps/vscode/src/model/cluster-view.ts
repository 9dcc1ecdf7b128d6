/**
 * The extension's picture of one cluster: plain data every source (Kubernetes, a flatnet lab, a recorded
 * fixture) maps into, and the only input of the pure tree, problem and topology models.
 */
import { z } from "zod";

export const nodeViewSchema = z.object({
  name: z.string().min(1),
  /** InternalIP(s), at most one per family. */
  internalIps: z.array(z.string()).default([]),
  podCidrs: z.array(z.string()).default([]),
  /** "host-gw" | "vxlan" | "auto" as the agent reports it; absent when no agent said. */
  backend: z.string().optional(),
  agent: z.enum(["healthy", "degraded", "down", "unknown"]).default("unknown"),
  ready: z.boolean().default(true),
});

export const podViewSchema = z.object({
  namespace: z.string().default("default"),
  name: z.string().min(1),
  node: z.string(),
  ips: z.array(z.string()).default([]),
  phase: z.string().default("Unknown"),
  /** hostNetwork pods carry the node's IP, so they are exempt from the pod-CIDR rules. */
  hostNetwork: z.boolean().default(false),
});

export const clusterViewSchema = z.object({
  /** Stable id across refreshes: `<source>:<name>`. */
  id: z.string().min(1),
  name: z.string().min(1),
  source: z.enum(["kubernetes", "lab", "fixture"]),
  clusterCidrs: z.array(z.string()).default([]),
  nodes: z.array(nodeViewSchema),
  pods: z.array(podViewSchema),
  /** Set while the source is disconnected; the view shows the last good data with this message. */
  status: z
    .object({ state: z.enum(["connecting", "ready", "reconnecting", "error"]), message: z.string().optional() })
    .optional(),
});

export type NodeView = z.infer<typeof nodeViewSchema>;
export type PodView = z.infer<typeof podViewSchema>;
export type ClusterView = z.infer<typeof clusterViewSchema>;
export type AgentHealth = NodeView["agent"];

/** Stable key of a pod inside its cluster. */
export function podKey(pod: Pick<PodView, "namespace" | "name">): string {
  return `${pod.namespace}/${pod.name}`;
}

/** Natural order of names, so node10 follows node9 (the tree, topology and matrix agree on it). */
export function compareNames(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** The pods of each node, in the cluster's order. */
export function podsByNode(pods: readonly PodView[]): Map<string, PodView[]> {
  const byNode = new Map<string, PodView[]>();
  for (const pod of pods) {
    const list = byNode.get(pod.node);
    if (list) list.push(pod);
    else byNode.set(pod.node, [pod]);
  }
  return byNode;
}
