/** "Probe from this pod to…": pick a target pod, verify, and open the matrix on the two pods' node cell. */
import * as vscode from "vscode";
import type { FlatnetContext } from "../flatnet-context.ts";
import { podKey } from "../model/cluster-view.ts";
import type { TreeNode } from "../model/tree.ts";
import { verify } from "../verify.ts";

export async function probeFrom(context: FlatnetContext, node?: TreeNode): Promise<void> {
  const cluster = context.activeCluster(node?.clusterId);
  if (!cluster || !node?.pod) {
    void vscode.window.showInformationMessage("Flat Network: pick a pod in the Flat Network view, then \"Probe from this pod to…\".");
    return;
  }
  const targets = cluster.pods.filter((p) => podKey(p) !== node.pod && p.ips.length > 0 && !p.hostNetwork);
  const choice = await vscode.window.showQuickPick(
    targets.map((p) => ({ label: podKey(p), description: p.ips.join(", "), detail: `on ${p.node}` })),
    { title: `Probe from ${node.pod} to…`, matchOnDescription: true, matchOnDetail: true },
  );
  if (!choice) return;
  // The engine probes the whole plan (pairs share responders); the matrix then opens on this pod's node pair.
  const target = targets.find((p) => podKey(p) === choice.label);
  const source = cluster.pods.find((p) => podKey(p) === node.pod);
  await verify(context, cluster.id, source && target ? { src: source.node, dst: target.node } : undefined);
}
