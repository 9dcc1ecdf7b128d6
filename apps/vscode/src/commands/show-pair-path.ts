/** Draws one pair of the cluster's last run in the topology: its hops, where it breaks, the findings and their fix. */
import * as vscode from "vscode";
import type { FlatnetContext } from "../flatnet-context.ts";
import { pairPath } from "../model/pair-path.ts";
import { PROTOCOL_VERSION } from "../protocol.ts";

export function showPairPath(context: FlatnetContext, pairId: string, clusterId?: string): void {
  const cluster = context.activeCluster(clusterId);
  const result = cluster ? context.runs.get(cluster.id)?.matrix.results().find((r) => r.pair.id === pairId) : undefined;
  if (!cluster || !result) {
    void vscode.window.showWarningMessage(`Flat Network: pair "${pairId}" is not in the last run of this cluster; verify again to trace it.`);
    return;
  }
  context.shownPath = { clusterId: cluster.id, path: pairPath(result) };
  context.showPanel("topology", cluster.id).post({ v: PROTOCOL_VERSION, type: "path", path: context.shownPath.path });
}
