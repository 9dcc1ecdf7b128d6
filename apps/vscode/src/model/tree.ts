/**
 * The sidebar's tree as plain data: cluster -> Problems group + nodes -> pods. Built lazily per level, so the
 * first level of a 5,000-pod cluster costs one pass over the pods; the TreeDataProvider only maps TreeNode to
 * vscode.TreeItem.
 */
import { type AgentHealth, type ClusterView, type NodeView, type PodView, compareNames, podKey, podsByNode } from "./cluster-view.ts";
import { PROBLEM_KINDS, type Problem, type ProblemKind } from "./problems.ts";

export type TreeNodeKind = "cluster" | "problems" | "problem-kind" | "problem" | "node" | "pod";

export interface TreeNode {
  /** Unique in the whole tree and stable across refreshes. */
  id: string;
  kind: TreeNodeKind;
  label: string;
  description?: string;
  /** Markdown. Cluster-sourced text is escaped. */
  tooltip?: string;
  /** A codicon id and an optional theme colour id (`charts.green`, `list.errorForeground`). */
  icon: { id: string; color?: string };
  /** `flatnet.<kind>`, plus `.hasIp` when "Copy IP" applies; menus match it with regexes. */
  contextValue: string;
  collapsible: "none" | "collapsed" | "expanded";
  clusterId: string;
  node?: string;
  pod?: string;
  ips?: string[];
  pairId?: string;
}

export interface ClusterEntry {
  cluster: ClusterView;
  problems: Problem[];
}

const HEALTH_ICON: Record<AgentHealth, { id: string; color?: string }> = {
  healthy: { id: "server", color: "testing.iconPassed" },
  degraded: { id: "server", color: "list.warningForeground" },
  down: { id: "server", color: "list.errorForeground" },
  unknown: { id: "server" },
};

/** Escapes text from the cluster for a MarkdownString (names and labels are untrusted input). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>&~]/g, (c) => `\\${c}`);
}

const PHASE_ICON = new Map<string, { id: string; color?: string }>([
  ["Running", { id: "pass-filled", color: "testing.iconPassed" }],
  ["Pending", { id: "clock", color: "list.warningForeground" }],
  ["Succeeded", { id: "check" }],
  ["Failed", { id: "error", color: "list.errorForeground" }],
]);

export class TreeModel {
  readonly #entries = new Map<string, ClusterEntry>();
  #podsByNode = new Map<string, Map<string, PodView[]>>();
  #flagged = new Map<string, { nodes: Set<string>; pods: Set<string> }>();

  constructor(entries: readonly ClusterEntry[]) {
    for (const entry of entries) this.#entries.set(entry.cluster.id, entry);
  }

  /** Problems across every cluster: the view's badge. */
  problemCount(): number {
    return [...this.#entries.values()].reduce((count, entry) => count + entry.problems.length, 0);
  }

  roots(): TreeNode[] {
    return [...this.#entries.values()].map((entry) => this.#clusterNode(entry));
  }

  /** Children of a node previously returned by `roots()` or `children()`; unknown ids have none. */
  children(parent: TreeNode): TreeNode[] {
    const entry = this.#entries.get(parent.clusterId);
    if (!entry) return [];
    switch (parent.kind) {
      case "cluster":
        return [this.#problemsNode(entry), ...[...entry.cluster.nodes].sort((a, b) => compareNames(a.name, b.name)).map((node) => this.#nodeNode(entry, node))];
      case "problems":
        return PROBLEM_KINDS.flatMap(({ kind, title }) => {
          const count = entry.problems.filter((problem) => problem.kind === kind).length;
          return count === 0 ? [] : [this.#kindNode(entry, kind, title, count)];
        });
      case "problem-kind":
        return entry.problems.filter((problem) => `${entry.cluster.id}/problems/${problem.kind}` === parent.id).map((problem) => this.#problemNode(entry, problem));
      case "node":
        return (this.#pods(entry).get(parent.node ?? "") ?? []).map((pod) => this.#podNode(entry, pod));
      default:
        return [];
    }
  }

  #pods(entry: ClusterEntry): Map<string, PodView[]> {
    let byNode = this.#podsByNode.get(entry.cluster.id);
    if (!byNode) {
      byNode = podsByNode(entry.cluster.pods);
      for (const list of byNode.values()) list.sort((a, b) => compareText(podKey(a), podKey(b)));
      this.#podsByNode.set(entry.cluster.id, byNode);
    }
    return byNode;
  }

  /** Nodes and pods with a problem, found in one pass over the problems (not one per tree item). */
  #flaggedOf(entry: ClusterEntry): { nodes: Set<string>; pods: Set<string> } {
    let flagged = this.#flagged.get(entry.cluster.id);
    if (!flagged) {
      flagged = { nodes: new Set(), pods: new Set() };
      for (const problem of entry.problems) {
        if (problem.node !== undefined && problem.kind !== "nat-violation" && problem.kind !== "unreachable-pair") flagged.nodes.add(problem.node);
        if (problem.pod !== undefined) flagged.pods.add(problem.pod);
      }
      this.#flagged.set(entry.cluster.id, flagged);
    }
    return flagged;
  }

  #clusterNode(entry: ClusterEntry): TreeNode {
    const { cluster } = entry;
    const state = cluster.status?.state;
    const summary = `${cluster.nodes.length} nodes, ${cluster.pods.length} pods`;
    return {
      id: cluster.id,
      kind: "cluster",
      label: cluster.name,
      description: state === "reconnecting" || state === "error" ? `${cluster.status?.message ?? state} (${summary})` : `${cluster.source} · ${summary}`,
      tooltip: `**${escapeMarkdown(cluster.name)}** (${cluster.source})\n\nCluster CIDRs: ${escapeMarkdown(cluster.clusterCidrs.join(", ") || "unknown")}`,
      icon: state === "reconnecting" || state === "connecting" ? { id: "sync~spin" } : state === "error" ? { id: "error", color: "list.errorForeground" } : { id: "globe" },
      contextValue: `flatnet.cluster.${cluster.source}`,
      collapsible: "expanded",
      clusterId: cluster.id,
    };
  }

  #problemsNode(entry: ClusterEntry): TreeNode {
    const count = entry.problems.length;
    return {
      id: `${entry.cluster.id}/problems`,
      kind: "problems",
      label: "Problems",
      description: count === 0 ? "none found" : String(count),
      icon: count === 0 ? { id: "pass", color: "testing.iconPassed" } : { id: "warning", color: "list.errorForeground" },
      contextValue: "flatnet.problems",
      collapsible: count === 0 ? "none" : "expanded",
      clusterId: entry.cluster.id,
    };
  }

  #kindNode(entry: ClusterEntry, kind: ProblemKind, title: string, count: number): TreeNode {
    return {
      id: `${entry.cluster.id}/problems/${kind}`,
      kind: "problem-kind",
      label: title,
      description: String(count),
      icon: { id: "warning", color: "list.errorForeground" },
      contextValue: "flatnet.problemKind",
      collapsible: "collapsed",
      clusterId: entry.cluster.id,
    };
  }

  #problemNode(entry: ClusterEntry, problem: Problem): TreeNode {
    return {
      id: `${entry.cluster.id}/problem/${problem.id}`,
      kind: "problem",
      label: problem.message,
      tooltip: escapeMarkdown(problem.message),
      icon: problem.severity === "error" ? { id: "error", color: "list.errorForeground" } : { id: "warning", color: "list.warningForeground" },
      contextValue: problem.ip ? "flatnet.problem.hasIp" : "flatnet.problem",
      collapsible: "none",
      clusterId: entry.cluster.id,
      ...(problem.node ? { node: problem.node } : {}),
      ...(problem.pod ? { pod: problem.pod } : {}),
      ...(problem.ip ? { ips: [problem.ip] } : {}),
      ...(problem.pairId ? { pairId: problem.pairId } : {}),
    };
  }

  #nodeNode(entry: ClusterEntry, node: NodeView): TreeNode {
    const pods = this.#pods(entry).get(node.name) ?? [];
    const hasProblem = this.#flaggedOf(entry).nodes.has(node.name);
    const parts = [node.internalIps.join(", "), node.podCidrs.join(", ") || "no pod CIDR", node.backend].filter(Boolean);
    const lines = [
      `**${escapeMarkdown(node.name)}**${node.ready ? "" : " (NotReady)"}`,
      `InternalIP: ${escapeMarkdown(node.internalIps.join(", ") || "none")}`,
      `Pod CIDRs: ${escapeMarkdown(node.podCidrs.join(", ") || "none")}`,
      `Backend: ${escapeMarkdown(node.backend ?? "unknown")}`,
      `Agent: ${node.agent}`,
      `Pods: ${pods.length}`,
    ];
    return {
      id: `${entry.cluster.id}/node/${node.name}`,
      kind: "node",
      label: node.name,
      description: parts.join(" · "),
      tooltip: lines.join("\n\n"),
      icon: hasProblem ? { id: "server", color: "list.errorForeground" } : node.ready ? HEALTH_ICON[node.agent] : { id: "server", color: "disabledForeground" },
      contextValue: node.internalIps.length > 0 ? "flatnet.node.hasIp" : "flatnet.node",
      collapsible: pods.length > 0 ? "collapsed" : "none",
      clusterId: entry.cluster.id,
      node: node.name,
      ips: node.internalIps,
    };
  }

  #podNode(entry: ClusterEntry, pod: PodView): TreeNode {
    const key = podKey(pod);
    const hasProblem = this.#flaggedOf(entry).pods.has(key);
    return {
      id: `${entry.cluster.id}/pod/${key}`,
      kind: "pod",
      label: pod.namespace === "default" ? pod.name : key,
      description: `${pod.ips.join(", ") || "no IP"} · ${pod.phase}${pod.hostNetwork ? " · hostNetwork" : ""}`,
      tooltip: [`**${escapeMarkdown(key)}**`, `IPs: ${escapeMarkdown(pod.ips.join(", ") || "none")}`, `Node: ${escapeMarkdown(pod.node)}`, `Phase: ${escapeMarkdown(pod.phase)}`].join("\n\n"),
      icon: hasProblem ? { id: "warning", color: "list.errorForeground" } : (PHASE_ICON.get(pod.phase) ?? { id: "question" }),
      contextValue: pod.ips.length > 0 ? "flatnet.pod.hasIp" : "flatnet.pod",
      collapsible: "none",
      clusterId: entry.cluster.id,
      node: pod.node,
      pod: key,
      ips: pod.ips,
    };
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
