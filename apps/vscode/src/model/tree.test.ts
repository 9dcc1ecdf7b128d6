import { describe, expect, it } from "vitest";
import { findInventoryProblems } from "./problems.ts";
import { makeSyntheticCluster } from "../../test-support/synthetic.ts";
import { TreeModel, escapeMarkdown } from "./tree.ts";

describe("TreeModel", () => {
  const view = makeSyntheticCluster({ nodes: 11, podsPerNode: 2, name: "lab" });
  view.nodes[1]!.agent = "down";
  view.pods.push({ namespace: "kube-system", name: "stray", node: "node-1", ips: ["10.99.0.1"], phase: "Pending", hostNetwork: false });
  const problems = findInventoryProblems(view);
  const model = new TreeModel([{ cluster: view, problems }]);

  it("puts one cluster at the root with a node and pod count", () => {
    expect(model.roots().map(({ id, kind, label, description, collapsible }) => ({ id, kind, label, description, collapsible }))).toEqual([
      { id: "fixture:lab", kind: "cluster", label: "lab", description: "fixture · 11 nodes, 23 pods", collapsible: "expanded" },
    ]);
  });

  it("lists Problems first, then nodes in natural order with InternalIP, pod CIDRs and backend", () => {
    const children = model.children(model.roots()[0]!);
    expect(children.map((child) => child.label)).toEqual(["Problems", ...Array.from({ length: 11 }, (_, i) => `node-${i + 1}`)]);
    expect(children[1]).toMatchObject({ kind: "node", description: "172.31.0.2 · 10.244.0.0/24 · vxlan", contextValue: "flatnet.node.hasIp", ips: ["172.31.0.2"], icon: { id: "server", color: "list.errorForeground" } });
    expect(children[2]).toMatchObject({ icon: { id: "server", color: "list.errorForeground" } });
    expect(children[3]).toMatchObject({ icon: { id: "server", color: "testing.iconPassed" } });
  });

  it("groups problems by kind with counts, and the badge counts them all", () => {
    const problemsNode = model.children(model.roots()[0]!)[0]!;
    expect(problemsNode.description).toBe("2");
    const kinds = model.children(problemsNode);
    expect(kinds.map(({ label, description }) => ({ label, description }))).toEqual([
      { label: "IPs outside their node's CIDR", description: "1" },
      { label: "Agents down", description: "1" },
    ]);
    expect(model.children(kinds[0]!).map((node) => node.label)).toEqual(["pod kube-system/stray has IP 10.99.0.1, outside node node-1's pod CIDRs 10.244.0.0/24"]);
    expect(model.problemCount()).toBe(2);
  });

  it("lists a node's pods sorted, with IPs and phase, and flags the stray pod", () => {
    const node1 = model.children(model.roots()[0]!)[1]!;
    const pods = model.children(node1);
    expect(pods.map(({ label, description, icon, contextValue }) => ({ label, description, icon, contextValue }))).toEqual([
      { label: "pod-1-1", description: "10.244.0.10 · Running", icon: { id: "pass-filled", color: "testing.iconPassed" }, contextValue: "flatnet.pod.hasIp" },
      { label: "pod-1-2", description: "10.244.0.11 · Running", icon: { id: "pass-filled", color: "testing.iconPassed" }, contextValue: "flatnet.pod.hasIp" },
      { label: "kube-system/stray", description: "10.99.0.1 · Pending", icon: { id: "warning", color: "list.errorForeground" }, contextValue: "flatnet.pod.hasIp" },
    ]);
  });

  it("shows an empty Problems group as a leaf and a reconnecting cluster with its message", () => {
    const quiet = makeSyntheticCluster({ nodes: 1, podsPerNode: 0 });
    quiet.status = { state: "reconnecting", message: "watch disconnected, retrying in 2 s" };
    const tree = new TreeModel([{ cluster: quiet, problems: [] }]);
    const root = tree.roots()[0]!;
    expect(root).toMatchObject({ description: "watch disconnected, retrying in 2 s (1 nodes, 0 pods)", icon: { id: "sync~spin" } });
    expect(tree.children(root).map(({ label, collapsible }) => ({ label, collapsible }))).toEqual([
      { label: "Problems", collapsible: "none" },
      { label: "node-1", collapsible: "none" },
    ]);
  });

  it.each([
    ["nat-violation", "testing.iconPassed"],
    ["unreachable-pair", "testing.iconPassed"],
    ["mtu-blackhole", "list.errorForeground"],
    ["duplicate-ip", "list.errorForeground"],
  ] as const)("a %s problem on a node colours its icon %s", (kind, color) => {
    const one = makeSyntheticCluster({ nodes: 1, podsPerNode: 0 });
    const tree = new TreeModel([{ cluster: one, problems: [{ id: "p", kind, severity: "error", message: "m", node: "node-1" }] }]);
    expect(tree.children(tree.roots()[0]!)[1]).toMatchObject({ label: "node-1", icon: { id: "server", color } });
  });

  it.each([
    ["plain", "plain"],
    ["[x](http://evil)", "\\[x\\]\\(http://evil\\)"],
    ["<img src=x>", "\\<img src=x\\>"],
  ])("escapes markdown in %s", (input, output) => {
    expect(escapeMarkdown(input)).toBe(output);
  });
});
