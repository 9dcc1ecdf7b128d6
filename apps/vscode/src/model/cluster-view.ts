/**
 * The extension's picture of one cluster: plain data every source (Kubernetes, a flatnet lab, a recorded
 * fixture) maps into, and the only input of the pure tree, problem and topology models.
 */
import { z } from "zod";

export type SourceKind = "kubernetes" | "lab" | "fixture";
export type AgentHealth = "healthy" | "degraded" | "down" | "unknown";

export interface NodeView {
  name: string;
  /** InternalIP(s), at most one per family. */
  internalIps: string[];
  podCidrs: string[];
  /** "host-gw" | "vxlan" | "auto" as the agent reports it; absent when no agent said. */
  backend?: string;
  agent: AgentHealth;
  ready: boolean;
}

export interface PodView {
  namespace: string;
  name: string;
  node: string;
  ips: string[];
  phase: string;
  /** hostNetwork pods carry the node's IP, so they are exempt from the pod-CIDR rules. */
  hostNetwork: boolean;
}

export interface ClusterView {
  /** Stable id across refreshes: `<source>:<name>`. */
  id: string;
  name: string;
  source: SourceKind;
  clusterCidrs: string[];
  nodes: NodeView[];
  pods: PodView[];
  /** Set while the source is disconnected; the view shows the last good data with this message. */
  status?: { state: "connecting" | "ready" | "reconnecting" | "error"; message?: string };
}

export const nodeViewSchema = z.object({
  name: z.string().min(1),
  internalIps: z.array(z.string()).default([]),
  podCidrs: z.array(z.string()).default([]),
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
  hostNetwork: z.boolean().default(false),
});

export const clusterViewSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  source: z.enum(["kubernetes", "lab", "fixture"]),
  clusterCidrs: z.array(z.string()).default([]),
  nodes: z.array(nodeViewSchema),
  pods: z.array(podViewSchema),
  status: z
    .object({ state: z.enum(["connecting", "ready", "reconnecting", "error"]), message: z.string().optional() })
    .optional(),
});

/** Stable key of a pod inside its cluster. */
export function podKey(pod: Pick<PodView, "namespace" | "name">): string {
  return `${pod.namespace}/${pod.name}`;
}
