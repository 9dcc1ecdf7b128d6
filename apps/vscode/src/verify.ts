/**
 * Verify: finds the flatnet command (asking consent for a workspace's), runs the probe engine for a cluster and
 * streams its results into the matrix, the tree's problems and the status bar verdict.
 */
import { accessSync, constants, statSync } from "node:fs";
import type { ProbeEvent } from "@flatnet/core";
import * as vscode from "vscode";
import type { FlatnetContext, RunState } from "./flatnet-context.ts";
import type { ClusterView } from "./model/cluster-view.ts";
import { HeatmapModel } from "./model/matrix.ts";
import { findCli, labNeedsRoot, shellLine } from "./probe/find-cli.ts";
import { buildProbeCommand } from "./probe/probe-command.ts";
import { replayProbeRun, runFailed, spawnProbeRun } from "./probe/probe-runner.ts";
import { PROTOCOL_VERSION } from "./protocol.ts";

/** Runs the probe engine for a cluster and streams its results into the matrix; cancellable from the progress. */
export async function verify(context: FlatnetContext, clusterId?: string, focus?: { src: string; dst: string }): Promise<void> {
  const cluster = context.activeCluster(clusterId);
  if (!cluster) {
    void vscode.window.showErrorMessage("Flat Network: no cluster to verify. Start a flatnet lab or pick a Kubernetes context (flatnet.contexts).");
    return;
  }
  const s = context.settings;
  const command = s["probe.replay"] ? undefined : await probeCommand(context, cluster);
  if (command === null) return;
  context.runs.get(cluster.id)?.process?.cancel();
  const run: RunState = { events: [], matrix: new HeatmapModel(cluster.nodes.map((n) => n.name)), report: undefined, process: undefined };
  context.runs.set(cluster.id, run);
  const panel = context.showPanel("matrix", cluster.id);
  panel.post({ v: PROTOCOL_VERSION, type: "status", level: "info", message: `Verifying ${cluster.name}…` });
  setVerdict(context.status, cluster.name, "running");
  const callbacks = {
    onEvents: (events: ProbeEvent[]) => {
      run.events.push(...events);
      for (const event of events) {
        run.matrix.apply(event);
        if (event.type === "run-finished") run.report = event.report;
      }
      if (context.runs.get(cluster.id) === run) context.panel("matrix")?.post({ v: PROTOCOL_VERSION, type: "probe-events", events });
      context.scheduleRebuild(); // problems found so far reach the tree while the run streams
    },
    onWarning: (message: string) => context.output.warn(message),
  };
  if (command === undefined) run.process = replayProbeRun(s["probe.replay"], callbacks);
  else if ("error" in command) callbacks.onEvents([runFailed("spawn", "ERR_PROBE_SPAWN", command.error)]);
  else {
    context.output.info(`running ${command.argv.join(" ")}${Object.keys(command.env).length ? ` with ${Object.entries(command.env).map(([k, v]) => `${k}=${v}`).join(" ")}` : ""}`);
    try {
      run.process = spawnProbeRun(command.argv, { ...process.env, ...command.env }, callbacks);
    } catch (error) {
      callbacks.onEvents([runFailed("spawn", "ERR_PROBE_SPAWN", String(error))]);
    }
  }
  if (focus) panel.post({ v: PROTOCOL_VERSION, type: "select", src: focus.src, dst: focus.dst });
  const done = run.process?.done ?? Promise.resolve();
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Flat Network: verifying ${cluster.name}`, cancellable: true },
    (progress, token) => {
      const cancel = token.onCancellationRequested(() => run.process?.cancel());
      let reported = 0;
      const timer = setInterval(() => {
        const { done: finished, total } = run.matrix.progress;
        if (total > 0 && finished > reported) progress.report({ message: `${finished}/${total} pairs`, increment: ((finished - reported) / total) * 100 });
        reported = finished;
      }, 250);
      return done.finally(() => {
        clearInterval(timer);
        cancel.dispose();
      });
    },
  );
  run.process = undefined;
  const failed = run.events.find((e) => e.type === "run-failed");
  const line = failed && failed.type === "run-failed" ? `Verification failed: ${failed.error.message}` : (run.report?.summary.line ?? "Verification finished");
  if (failed) context.output.error(line);
  else context.output.info(`${cluster.name}: ${line}`);
  panel.post({ v: PROTOCOL_VERSION, type: "status", level: failed ? "error" : "info", message: line });
  setVerdict(context.status, cluster.name, failed ? "error" : (run.report?.summary.failed ?? 0) > 0 ? "failed" : "passed", line);
  context.scheduleRebuild();
}

/** Cancels every running verification (the progress notification's Cancel does the same for its run). */
export function cancelVerify(context: FlatnetContext): void {
  for (const run of context.runs.values()) run.process?.cancel();
}

function setVerdict(status: vscode.StatusBarItem, cluster: string, verdict: "running" | "passed" | "failed" | "error", detail?: string): void {
  const icon = { running: "$(sync~spin)", passed: "$(pass)", failed: "$(error)", error: "$(warning)" }[verdict];
  status.text = `${icon} flatnet: ${verdict === "running" ? "verifying" : verdict === "error" ? "not verified" : verdict}`;
  status.tooltip = `Flat Network, ${cluster}: ${detail ?? "verifying…"}`;
  status.backgroundColor = verdict === "failed" ? new vscode.ThemeColor("statusBarItem.errorBackground") : verdict === "error" ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  status.show();
}

/**
 * The probe command for a cluster, or why there is none (said in the run and in a message with a fix
 * button), or null when the user declined a command the workspace chose.
 */
async function probeCommand(context: FlatnetContext, cluster: ClusterView): Promise<{ argv: string[]; env: Record<string, string> } | { error: string } | null> {
  const workspaceCommand = context.workspaceCommand;
  const workspaceState = context.extension.workspaceState;
  if (workspaceCommand !== undefined && workspaceState.get("flatnet.allowedCommand") !== workspaceCommand) {
    const always = "Allow for this workspace";
    const choice = await vscode.window.showWarningMessage(
      "Flat Network: this workspace's settings choose the command that Verify runs.",
      { modal: true, detail: `${workspaceCommand}\n\nRun it? Settings in your user profile need no confirmation.` },
      "Run once",
      always,
    );
    if (!choice) return null;
    if (choice === always) await workspaceState.update("flatnet.allowedCommand", workspaceCommand);
  }
  const executable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return statSync(path).isFile();
    } catch {
      return false;
    }
  };
  const found = findCli({
    setting: context.cliSetting,
    path: process.env.PATH,
    workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
    isExecutable: executable,
    exists: (path) => executable(path) || statSync(path, { throwIfNoEntry: false })?.isFile() === true,
    execPath: process.execPath,
    runsAsNode: process.versions.electron === undefined,
  });
  if (!found.found) {
    const build = "Build flatnet";
    const settings = "Set flatnet.cli";
    void vscode.window.showErrorMessage(`Flat Network: ${found.message}`, ...(found.fix ? [build] : []), settings).then((choice) => {
      if (choice === settings) void vscode.commands.executeCommand("workbench.action.openSettings", "flatnet.cli");
      if (choice === build && found.fix) {
        const terminal = vscode.window.createTerminal({ name: "flatnet build", cwd: found.fix.folder });
        terminal.show();
        terminal.sendText("npm ci && npx turbo run build --filter=@flatnet/agent...");
      }
    });
    return { error: found.message };
  }
  if (found.from !== "setting") context.output.info(`flatnet command found ${found.from === "path" ? "on PATH" : "in the workspace's build"}: ${found.argv.join(" ")}`);
  let command;
  try {
    command = buildProbeCommand(found.argv, context.settings["probe.args"], cluster, context.kubeconfigs);
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
  const needsRoot = cluster.source === "lab" ? labNeedsRoot(process.getuid?.()) : undefined;
  if (needsRoot) {
    const sudo = "Run in a terminal with sudo";
    const human = command.argv.filter((arg) => arg !== "--ndjson" && arg !== "--json");
    void vscode.window.showErrorMessage(`Flat Network: ${needsRoot}`, sudo).then((choice) => {
      if (choice !== sudo) return;
      const terminal = vscode.window.createTerminal({ name: "flatnet check (root)" });
      terminal.show();
      terminal.sendText(shellLine(["sudo", ...human]));
    });
    return { error: needsRoot };
  }
  return { argv: command.argv, env: { ...command.env, ...found.env } };
}
