/**
 * Kubernetes Node and Pod objects -> NodeView / PodView. zod at the edge: only the fields we read are
 * checked, and an object that does not fit is skipped with a reason instead of breaking the whole view.
 */
import { annotationKeys, DEFAULT_ANNOTATION_PREFIX, type KubeNode, kubeNodeAddresses, kubeNodePodCidrs, kubeNodeReady, kubeNodeSchema } from "@flatnet/core";
import { z } from "zod";
import type { AgentHealth, ClusterView, NodeView, PodView } from "../model/cluster-view.ts";

const metadata = z.object({ name: z.string().min(1), namespace: z.string().optional(), annotations: z.record(z.string(), z.string()).nullish(), labels: z.record(z.string(), z.string()).nullish() });
const condition = z.object({ type: z.string(), status: z.string() });

export const kubePodSchema = z.object({
  metadata,
  spec: z.object({ nodeName: z.string().nullish(), hostNetwork: z.boolean().nullish() }).nullish(),
  status: z.object({ phase: z.string().nullish(), podIP: z.string().nullish(), podIPs: z.array(z.object({ ip: z.string() })).nullish(), conditions: z.array(condition).nullish() }).nullish(),
});

export type KubePod = z.infer<typeof kubePodSchema>;

export function nodeToView(node: KubeNode, agent: AgentHealth): NodeView {
  // The agent publishes its chosen backend (host-gw / vxlan) on its Node.
  const backend = node.metadata.annotations?.[annotationKeys(DEFAULT_ANNOTATION_PREFIX).backend];
  return {
    name: node.metadata.name,
    internalIps: kubeNodeAddresses(node),
    podCidrs: kubeNodePodCidrs(node),
    ...(backend ? { backend } : {}),
    agent,
    ready: kubeNodeReady(node) === true,
  };
}

export function podToView(pod: KubePod): PodView | undefined {
  const node = pod.spec?.nodeName;
  if (!node) return undefined; // unscheduled pods have no IP and no node to hang under
  const ips = pod.status?.podIPs?.length ? pod.status.podIPs.map((p) => p.ip) : pod.status?.podIP ? [pod.status.podIP] : [];
  return { namespace: pod.metadata.namespace ?? "default", name: pod.metadata.name, node, ips, phase: pod.status?.phase ?? "Unknown", hostNetwork: pod.spec?.hostNetwork === true };
}

function podReady(pod: KubePod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** Agent health per node from the agent DaemonSet's pods: Ready -> healthy, present but not Ready -> degraded, absent -> down (unknown when no agent runs anywhere). */
export function agentHealthByNode(agentPods: readonly KubePod[]): (node: string) => AgentHealth {
  const byNode = new Map<string, AgentHealth>();
  for (const pod of agentPods) {
    const node = pod.spec?.nodeName;
    if (!node) continue;
    const health: AgentHealth = podReady(pod) ? "healthy" : "degraded";
    if (byNode.get(node) !== "healthy") byNode.set(node, health);
  }
  return (node) => byNode.get(node) ?? (byNode.size === 0 ? "unknown" : "down");
}

export function matchesLabels(pod: KubePod, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => pod.metadata.labels?.[key] === value);
}

/** Parses `a=b,c=d` (equality selectors only). */
export function parseLabelSelector(text: string): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [key, value] = part.split("=");
    if (!key || value === undefined) throw new Error(`label selector "${text}" has "${part}"; only key=value terms are supported`);
    selector[key.trim()] = value.trim();
  }
  return selector;
}

/** Builds the view from raw objects; objects that fail validation are counted, not fatal. */
export function buildKubeView(id: string, name: string, objects: { nodes: readonly unknown[]; pods: readonly unknown[] }, agentSelector: Record<string, string>): { view: ClusterView; skipped: number } {
  let skipped = 0;
  const valid = <T>(schema: z.ZodType<T>, raws: readonly unknown[]): T[] =>
    raws.flatMap((raw) => {
      const parsed = schema.safeParse(raw);
      if (!parsed.success) skipped++;
      return parsed.success ? [parsed.data] : [];
    });
  const nodes = valid(kubeNodeSchema, objects.nodes);
  const pods = valid(kubePodSchema, objects.pods);
  // An empty selector means "no agent selector", not "every pod is an agent".
  const hasSelector = Object.keys(agentSelector).length > 0;
  const health = agentHealthByNode(hasSelector ? pods.filter((pod) => matchesLabels(pod, agentSelector)) : []);
  return {
    view: {
      id,
      name,
      source: "kubernetes",
      clusterCidrs: [],
      nodes: nodes.map((node) => nodeToView(node, health(node.metadata.name))),
      pods: pods.flatMap((pod) => podToView(pod) ?? []),
    },
    skipped,
  };
}
