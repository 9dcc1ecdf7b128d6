import { describe, expect, it } from "vitest";
import { findInventoryProblems } from "./model/problems.ts";
import { makeSyntheticCluster } from "../test-support/synthetic.ts";
import { TreeModel } from "./model/tree.ts";
import { FlatnetTreeProvider } from "./tree-provider.ts";

describe("FlatnetTreeProvider", () => {
  it("maps TreeNodes to TreeItems and signals a new model once", () => {
    const provider = new FlatnetTreeProvider();
    let fired = 0;
    provider.onDidChangeTreeData(() => fired++);
    const view = makeSyntheticCluster({ nodes: 2, podsPerNode: 1, name: "lab" });
    provider.setModel(new TreeModel([{ cluster: view, problems: findInventoryProblems(view) }]));
    expect(fired).toBe(1);
    const [root] = provider.getChildren();
    const nodes = provider.getChildren(root);
    const item = provider.getTreeItem(nodes[1]!) as unknown as Record<string, unknown>;
    expect(item).toMatchObject({
      label: "node-1",
      id: "fixture:lab/node/node-1",
      description: "172.31.0.2 · 10.244.0.0/24 · vxlan",
      collapsibleState: 1,
      contextValue: "flatnet.node.hasIp",
      iconPath: { id: "server", color: { id: "testing.iconPassed" } },
    });
    expect(provider.getParent(nodes[1]!)).toBe(root);
    expect(provider.getChildren(nodes[1]!).map((pod) => pod.label)).toEqual(["pod-1-1"]);
  });
});
