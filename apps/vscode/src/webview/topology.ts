/**
 * The topology, drawn like the classic flat-network figure: each node a box holding its pods and their IPs,
 * nodes on both sides of one flat pod network (the cluster CIDR), every node wired to it, no NAT in between.
 */
import { type ClusterView, compareNames, podKey, podsByNode } from "../model/cluster-view.ts";
import { findInventoryProblems } from "../model/problems.ts";
import { button, h, icon } from "./dom.ts";

export interface TopologyActions {
  copy(text: string): void;
}

const PODS_SHOWN = 16;

export function renderTopology(root: HTMLElement, cluster: ClusterView | null, actions: TopologyActions): void {
  performance.mark("fn-topology-start");
  root.replaceChildren();
  if (!cluster) {
    root.append(h("p", { class: "empty" }, icon("info"), " No cluster yet. Pick a Kubernetes context or start a flatnet lab."));
    return;
  }
  const problems = findInventoryProblems(cluster);
  const badPods = new Set(problems.flatMap((problem) => (problem.pod ? [problem.pod] : [])));
  const badNodes = new Set(problems.flatMap((problem) => (problem.node && !problem.pod ? [problem.node] : [])));
  const podsOf = podsByNode(cluster.pods);
  const nodes = [...cluster.nodes].sort((a, b) => compareNames(a.name, b.name));

  const header = h(
    "header",
    { class: "toolbar" },
    h("h1", {}, icon("type-hierarchy"), ` ${cluster.name}`),
    h("span", { class: "muted" }, `${cluster.source} · ${nodes.length} nodes · ${cluster.pods.length} pods`),
    cluster.status && cluster.status.state !== "ready" ? h("span", { class: "status warning" }, icon("sync"), ` ${cluster.status.message ?? cluster.status.state}`) : null,
  );

  const boxes = nodes.map((node) => {
    const pods = (podsOf.get(node.name) ?? []).sort((a, b) => compareNames(podKey(a), podKey(b)));
    const healthClass = badNodes.has(node.name) || node.agent === "down" ? "bad" : node.agent === "healthy" ? "good" : node.agent === "degraded" ? "warn" : "";
    const podChips = pods.slice(0, PODS_SHOWN).map((pod) => {
      const bad = badPods.has(podKey(pod));
      return button(
        { class: `pod${bad ? " bad" : ""}`, title: `${podKey(pod)}\n${pod.ips.join("\n")}\n${pod.phase}\nClick to copy the IP`, "data-pod": podKey(pod) },
        () => pod.ips[0] && actions.copy(pod.ips[0]),
        icon(bad ? "warning" : "symbol-field"),
        h("span", { class: "pod-name" }, pod.name),
        h("span", { class: "ip" }, pod.ips.join(" ") || "no IP"),
      );
    });
    return h(
      "section",
      { class: `node ${healthClass}`, "data-node": node.name, "aria-label": `node ${node.name}` },
      h("h2", {}, icon("server"), ` ${node.name}`, node.ready ? null : h("span", { class: "muted" }, " (NotReady)")),
      h(
        "dl",
        {},
        h("dt", {}, "InternalIP"),
        h("dd", { class: "ip" }, node.internalIps.join(", ") || "none"),
        h("dt", {}, "pod CIDR"),
        h("dd", { class: "ip" }, node.podCidrs.join(", ") || "none"),
        h("dt", {}, "backend"),
        h("dd", {}, node.backend ?? "unknown"),
        h("dt", {}, "agent"),
        h("dd", { class: `agent ${healthClass}` }, node.agent),
      ),
      h("div", { class: "pods" }, ...podChips, pods.length > PODS_SHOWN ? h("span", { class: "muted more" }, `+${pods.length - PODS_SHOWN} more`) : null),
      h("div", { class: "wire", "aria-hidden": "true" }),
    );
  });
  // Nodes on both sides of the flat network, as in the classic figure: the first half above, the rest below.
  const half = Math.ceil(boxes.length / 2);

  const network = h(
    "div",
    { class: "flat-network", role: "note" },
    icon("globe"),
    h("strong", {}, " flat pod network "),
    h("span", { class: "ip" }, cluster.clusterCidrs.join(", ") || ""),
    h("span", { class: "muted" }, " · every pod reaches every pod at its own IP, no NAT"),
  );
  root.append(
    header,
    h(
      "div",
      { class: "topology" },
      h("div", { class: "nodes above" }, ...boxes.slice(0, half)),
      network,
      boxes.length > half ? h("div", { class: "nodes below" }, ...boxes.slice(half)) : null,
    ),
  );
  if (problems.length > 0) {
    root.append(h("section", { class: "problems" }, h("h2", {}, icon("warning"), ` ${problems.length} ${problems.length === 1 ? "problem" : "problems"}`), h("ul", {}, ...problems.map((problem) => h("li", {}, problem.message)))));
  }
  performance.mark("fn-topology-end");
}
