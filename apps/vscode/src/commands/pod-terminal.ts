/** A terminal inside a lab pod's network namespace (the walkthrough's "open a terminal in a pod"). */
import * as vscode from "vscode";
import type { FlatnetContext } from "../flatnet-context.ts";
import type { TreeNode } from "../model/tree.ts";
import { labPodShell, readLabState } from "../sources/lab-source.ts";

export async function podTerminal(context: FlatnetContext, node?: TreeNode): Promise<void> {
  const lab = context.clusters().find((c) => c.id === node?.clusterId && c.source === "lab") ?? context.clusters().find((c) => c.source === "lab");
  if (!lab) {
    void vscode.window.showInformationMessage("Flat Network: no flatnet lab is running here. Bring it up first (Flat Network: Bring up the lab).");
    return;
  }
  const pod = node?.pod?.split("/").at(-1) ?? (await vscode.window.showQuickPick(lab.pods.map((p) => ({ label: p.name, description: p.ips.join(", "), detail: `on ${p.node}` })), { title: "Open a terminal in which pod?", ignoreFocusOut: true }))?.label;
  if (!pod) return;
  const state = readLabState(lab.id.slice("lab:".length));
  const shell = state.kind === "ok" ? labPodShell(state.state, pod, process.getuid?.()) : { error: state.kind === "invalid" ? state.message : "the lab's state.json is gone" };
  if ("error" in shell) {
    void vscode.window.showErrorMessage(`Flat Network: ${shell.error}`);
    return;
  }
  vscode.window.createTerminal({ name: `pod ${pod}`, ...shell }).show();
}
