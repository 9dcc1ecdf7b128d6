/** Thin adapter: TreeModel (pure) -> vscode.TreeItem. No logic here beyond the mapping. */
import * as vscode from "vscode";
import { TreeModel, type TreeNode } from "./model/tree.ts";

const COLLAPSIBLE = {
  none: vscode.TreeItemCollapsibleState.None,
  collapsed: vscode.TreeItemCollapsibleState.Collapsed,
  expanded: vscode.TreeItemCollapsibleState.Expanded,
} as const;

export class FlatnetTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  readonly #changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.#changed.event;
  #model = new TreeModel([]);
  readonly #parents = new Map<string, TreeNode | undefined>();

  get model(): TreeModel {
    return this.#model;
  }

  setModel(model: TreeModel): void {
    this.#model = model;
    this.#parents.clear();
    this.#changed.fire(undefined);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const item = new vscode.TreeItem(node.label, COLLAPSIBLE[node.collapsible]);
    item.id = node.id;
    if (node.description !== undefined) item.description = node.description;
    if (node.tooltip !== undefined) item.tooltip = new vscode.MarkdownString(node.tooltip);
    item.iconPath = new vscode.ThemeIcon(node.icon.id, node.icon.color ? new vscode.ThemeColor(node.icon.color) : undefined);
    item.contextValue = node.contextValue;
    if (node.kind === "problem" && node.pairId) item.command = { command: "flatnet.showPairPath", title: "Show the pair's path", arguments: [node] };
    return item;
  }

  getChildren(parent?: TreeNode): TreeNode[] {
    const children = parent ? this.#model.children(parent) : this.#model.roots();
    for (const child of children) this.#parents.set(child.id, parent);
    return children;
  }

  getParent(node: TreeNode): TreeNode | undefined {
    return this.#parents.get(node.id);
  }

  dispose(): void {
    this.#changed.dispose();
  }
}
