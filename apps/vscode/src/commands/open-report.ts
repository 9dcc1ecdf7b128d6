/** "Open the JSON report": the last run's ProbeReport, or the results so far while it streams. */
import type { PairResult, ProbeReport } from "@flatnet/core";
import * as vscode from "vscode";
import type { FlatnetContext } from "../flatnet-context.ts";

export async function openReport(context: FlatnetContext, clusterId?: string): Promise<void> {
  const cluster = context.activeCluster(clusterId);
  const run = cluster ? context.runs.get(cluster.id) : undefined;
  if (!run || run.events.length === 0) {
    void vscode.window.showInformationMessage("Flat Network: no verification has run yet. Run \"Flat Network: Verify flat connectivity\" first.");
    return;
  }
  const content: ProbeReport | { partial: true; results: PairResult[] } = run.report ?? { partial: true, results: run.matrix.results() };
  const document = await vscode.workspace.openTextDocument({ language: "json", content: JSON.stringify(content, null, 2) });
  await vscode.window.showTextDocument(document, { preview: false });
}
