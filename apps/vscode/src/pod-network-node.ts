/** "Pod network" under a cluster in the Kubernetes extension's Cluster Explorer: the same tree as the sidebar. */
import * as vscode from "vscode";
import type { ClusterView } from "./model/cluster-view.ts";
import type { TreeNode } from "./model/tree.ts";
import type { ExplorerNode } from "./sources/kubernetes-tools.ts";
import type { FlatnetTreeProvider } from "./tree-provider.ts";

export function podNetworkNode(provider: FlatnetTreeProvider, clusters: () => ClusterView[], context: string): ExplorerNode {
  const clusterId = `kubernetes:${context}`;
  const wrap = (node: TreeNode): ExplorerNode => ({
    getTreeItem: () => provider.getTreeItem(node),
    getChildren: async () => provider.model.children(node).map(wrap),
  });
  return {
    getTreeItem: () => {
      const item = new vscode.TreeItem("Pod network", vscode.TreeItemCollapsibleState.Collapsed);
      item.iconPath = new vscode.ThemeIcon("type-hierarchy");
      item.contextValue = "flatnet.podNetwork";
      item.description = "flatnet";
      return item;
    },
    getChildren: async () => {
      const root = provider.model.roots().find((node) => node.clusterId === clusterId);
      if (!root) {
        const item = new vscode.TreeItem(`Not shown: Flat Network shows ${clusters().filter((c) => c.source === "kubernetes").map((c) => c.name).join(", ") || "no context"}`);
        return [{ getTreeItem: () => item, getChildren: async () => [] }];
      }
      const verify = new vscode.TreeItem("Verify flat connectivity", vscode.TreeItemCollapsibleState.None);
      verify.iconPath = new vscode.ThemeIcon("run-all");
      verify.command = { command: "flatnet.verify", title: "Verify flat connectivity", arguments: [{ clusterId }] };
      return [{ getTreeItem: () => verify, getChildren: async () => [] }, ...provider.model.children(root).map(wrap)];
    },
  };
}
