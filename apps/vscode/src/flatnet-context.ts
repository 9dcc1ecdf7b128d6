/**
 * The one object that owns everything the extension creates (sources, tree view, panels, runs, commands) and
 * disposes it all. Data flow: sources -> coalesced rebuild -> TreeModel -> tree view / badge / panels.
 */
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import type { PairResult, ProbeEvent, ProbeReport } from "@flatnet/core";
import * as vscode from "vscode";
import type { ClusterView } from "./model/cluster-view.ts";
import { ProbeMatrix } from "./model/matrix.ts";
import { findInventoryProblems, findProbeProblems } from "./model/problems.ts";
import { type ClusterEntry, TreeModel, type TreeNode } from "./model/tree.ts";
import { WebviewPanelHost } from "./panels/webview-panel.ts";
import { type ProbeRun, replayProbeRun, spawnProbeRun } from "./probe/probe-runner.ts";
import { PROTOCOL_VERSION, type ViewKind, type WebviewMessage } from "./protocol.ts";
import { type Settings, parseSettings } from "./settings.ts";
import { FixtureSource } from "./sources/fixture-source.ts";
import { KubeSource } from "./sources/kube-source.ts";
import { kubeconfigPaths, loadKubeConfig } from "./sources/kubeconfig.ts";
import { parseLabelSelector } from "./sources/kube-mapping.ts";
import { LabSource } from "./sources/lab-source.ts";
import type { ClusterSource } from "./sources/source.ts";
import { FlatnetTreeProvider } from "./tree-provider.ts";

interface RunState {
  clusterId: string;
  events: ProbeEvent[];
  matrix: ProbeMatrix;
  report: ProbeReport | undefined;
  process: ProbeRun | undefined;
}

export class FlatnetContext implements vscode.Disposable {
  readonly #disposables: vscode.Disposable[] = [];
  readonly #provider = new FlatnetTreeProvider();
  readonly #treeView: vscode.TreeView<TreeNode>;
  readonly #output = vscode.window.createOutputChannel("Flat Network");
  #settings: Settings = parseSettings(() => undefined).settings;
  #sources: ClusterSource[] = [];
  #panels = new Map<ViewKind, WebviewPanelHost>();
  #runs = new Map<string, RunState>();
  #activeClusterId: string | undefined;
  #rebuildTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly extension: vscode.ExtensionContext) {
    this.#treeView = vscode.window.createTreeView("flatnet.clusters", { treeDataProvider: this.#provider, showCollapseAll: true });
    this.#disposables.push(this.#provider, this.#treeView, this.#output);
  }

  start(): void {
    const command = (id: string, run: (...args: never[]) => unknown) => this.#disposables.push(vscode.commands.registerCommand(id, run));
    command("flatnet.refresh", () => this.#restartSources());
    command("flatnet.verify", (node?: TreeNode) => this.verify(node?.clusterId));
    command("flatnet.probeFrom", (node?: TreeNode) => this.#probeFrom(node));
    command("flatnet.copyIp", (node?: TreeNode) => this.#copyIp(node));
    command("flatnet.openReport", (node?: TreeNode) => this.#openReport(node?.clusterId));
    command("flatnet.showTopology", (node?: TreeNode) => this.#showPanel("topology", node?.clusterId));
    command("flatnet.showMatrix", (node?: TreeNode) => this.#showPanel("matrix", node?.clusterId));
    this.#disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("flatnet")) this.#restartSources();
      }),
    );
    this.#restartSources();
  }

  #readSettings(): void {
    const config = vscode.workspace.getConfiguration("flatnet");
    const { settings, problems } = parseSettings((key) => {
      const inspected = config.inspect(key);
      return inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
    });
    // Recorded fixtures may be named relative to the workspace (the demo workspace does).
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const resolve = (path: string) => (path && folder && !isAbsolute(path) ? join(folder, path) : path);
    this.#settings = { ...settings, fixture: resolve(settings.fixture), "probe.replay": resolve(settings["probe.replay"]) };
    for (const problem of problems) {
      this.#output.appendLine(problem);
      void vscode.window.showWarningMessage(`Flat Network: ${problem}`);
    }
  }

  #restartSources(): void {
    for (const source of this.#sources) source.dispose();
    this.#sources = [];
    this.#readSettings();
    const s = this.#settings;
    if (s.fixture) this.#sources.push(new FixtureSource(s.fixture));
    if (s["lab.enabled"]) this.#sources.push(new LabSource(s["lab.stateDir"], { pollMs: 5000, debounceMs: s.refreshDebounceMs }));
    if (s["kubernetes.enabled"]) this.#sources.push(...this.#kubeSources(s));
    for (const source of this.#sources) source.start(() => this.#scheduleRebuild());
    this.#scheduleRebuild();
  }

  #kubeSources(s: Settings): ClusterSource[] {
    const paths = kubeconfigPaths(s.kubeconfig, process.env.KUBECONFIG, homedir());
    const { config, errors, loaded } = loadKubeConfig(paths);
    for (const error of errors) this.#output.appendLine(error);
    if (loaded.length === 0) return [];
    const contexts = s.contexts.length > 0 ? s.contexts : config.getCurrentContext() ? [config.getCurrentContext()] : [];
    const known = new Set(config.getContexts().map((c) => c.name));
    let selector: Record<string, string>;
    try {
      selector = parseLabelSelector(s.agentLabelSelector);
    } catch (error) {
      this.#output.appendLine(String(error));
      selector = {};
    }
    return contexts.flatMap((context) => {
      if (!known.has(context)) {
        this.#output.appendLine(`flatnet.contexts: context "${context}" is not in ${loaded.join(", ")}`);
        return [];
      }
      return [new KubeSource(config, { context, agentSelector: selector, debounceMs: s.refreshDebounceMs })];
    });
  }

  #scheduleRebuild(): void {
    if (this.#rebuildTimer) return;
    this.#rebuildTimer = setTimeout(() => {
      this.#rebuildTimer = undefined;
      this.#rebuild();
    }, Math.min(this.#settings.refreshDebounceMs, 100));
  }

  #clusters(): ClusterView[] {
    return this.#sources.flatMap((source) => source.view() ?? []);
  }

  #rebuild(): void {
    const clusters = this.#clusters();
    const entries: ClusterEntry[] = clusters.map((cluster) => {
      const run = this.#runs.get(cluster.id);
      return { cluster, problems: [...findInventoryProblems(cluster), ...(run ? findProbeProblems(run.matrix.results()) : [])] };
    });
    const model = new TreeModel(entries);
    this.#provider.setModel(model);
    const count = model.problemCount();
    this.#treeView.badge = count > 0 ? { value: count, tooltip: `${count} flat-network problems` } : undefined;
    const troubled = clusters.find((c) => c.status?.state === "reconnecting" || c.status?.state === "error");
    this.#treeView.message = clusters.length === 0 ? "No cluster found: no kubeconfig context and no flatnet lab on this machine." : troubled ? `${troubled.name}: ${troubled.status?.message ?? troubled.status?.state}` : undefined;
    void vscode.commands.executeCommand("setContext", "flatnet.hasCluster", clusters.length > 0);
    if (!this.#activeClusterId || !clusters.some((c) => c.id === this.#activeClusterId)) this.#activeClusterId = clusters[0]?.id;
    const active = clusters.find((c) => c.id === this.#activeClusterId) ?? null;
    for (const panel of this.#panels.values()) panel.post({ v: PROTOCOL_VERSION, type: "cluster", cluster: active });
  }

  #activeCluster(clusterId?: string): ClusterView | undefined {
    if (clusterId) this.#activeClusterId = clusterId;
    return this.#clusters().find((c) => c.id === this.#activeClusterId);
  }

  #showPanel(view: ViewKind, clusterId?: string): WebviewPanelHost {
    this.#activeCluster(clusterId);
    let panel = this.#panels.get(view);
    if (panel) {
      panel.reveal();
      this.#sendInitial(panel);
      return panel;
    }
    panel = new WebviewPanelHost(
      view,
      this.extension.extensionUri,
      (message, host) => this.#onWebviewMessage(message, host),
      (host) => this.#sendInitial(host),
      () => this.#panels.delete(view),
    );
    this.#panels.set(view, panel);
    return panel;
  }

  #sendInitial(panel: WebviewPanelHost): void {
    const cluster = this.#activeCluster() ?? null;
    panel.post({ v: PROTOCOL_VERSION, type: "cluster", cluster });
    const run = cluster ? this.#runs.get(cluster.id) : undefined;
    if (panel.view === "matrix" && run) panel.post({ v: PROTOCOL_VERSION, type: "probe-events", events: run.events });
  }

  #onWebviewMessage(message: WebviewMessage, host: WebviewPanelHost): void {
    switch (message.type) {
      case "verify":
        void this.verify();
        break;
      case "probe-pair":
        void this.verify(undefined, { src: message.src.node, dst: message.dst.node });
        break;
      case "copy":
        void vscode.env.clipboard.writeText(message.text).then(() => vscode.window.setStatusBarMessage(`Copied ${message.text}`, 3000));
        break;
      case "open-report":
        void this.#openReport();
        break;
      case "rendered":
        this.#output.appendLine(`${host.view} rendered in ${message.ms.toFixed(1)} ms`);
        break;
      case "ready":
        break;
    }
  }

  /** Runs the probe engine for a cluster and streams its results into the matrix. */
  async verify(clusterId?: string, focus?: { src: string; dst: string }): Promise<void> {
    const cluster = this.#activeCluster(clusterId);
    if (!cluster) {
      void vscode.window.showErrorMessage("Flat Network: no cluster to verify. Start a flatnet lab or pick a Kubernetes context (flatnet.contexts).");
      return;
    }
    const previous = this.#runs.get(cluster.id);
    previous?.process?.cancel();
    const run: RunState = { clusterId: cluster.id, events: [], matrix: new ProbeMatrix(cluster.nodes.map((n) => n.name)), report: undefined, process: undefined };
    this.#runs.set(cluster.id, run);
    const panel = this.#showPanel("matrix", cluster.id);
    panel.post({ v: PROTOCOL_VERSION, type: "status", level: "info", message: `Verifying ${cluster.name}…` });
    const callbacks = {
      onEvents: (events: ProbeEvent[]) => {
        run.events.push(...events);
        for (const event of events) {
          run.matrix.apply(event);
          if (event.type === "run-finished") run.report = event.report;
        }
        if (this.#runs.get(cluster.id) === run) this.#panels.get("matrix")?.post({ v: PROTOCOL_VERSION, type: "probe-events", events });
        this.#scheduleRebuild(); // problems found so far reach the tree while the run streams
      },
      onWarning: (message: string) => this.#output.appendLine(message),
    };
    const s = this.#settings;
    if (s["probe.replay"]) run.process = replayProbeRun(s["probe.replay"], callbacks);
    else {
      const env: NodeJS.ProcessEnv = { ...process.env, FLATNET_CLUSTER_SOURCE: cluster.source };
      if (cluster.source === "kubernetes") env.FLATNET_KUBE_CONTEXT = cluster.name;
      const args = cluster.source === "lab" ? [...s.cli, ...s["probe.labArgs"], "--state-dir", cluster.id.slice("lab:".length)] : [...s.cli, ...s["probe.args"]];
      this.#output.appendLine(`running ${args.join(" ")}`);
      try {
        run.process = spawnProbeRun(args, env, { name: cluster.name, source: cluster.source }, callbacks);
      } catch (error) {
        callbacks.onEvents([{ v: 1, type: "run-failed", runId: "spawn", error: { code: "ERR_PROBE_SPAWN", message: String(error) } }]);
      }
    }
    if (focus) panel.post({ v: PROTOCOL_VERSION, type: "select", src: focus.src, dst: focus.dst });
    await vscode.window.withProgress({ location: { viewId: "flatnet.clusters" }, title: "Verifying flat connectivity" }, () => run.process?.done ?? Promise.resolve());
    run.process = undefined;
    const failed = run.events.find((e) => e.type === "run-failed");
    panel.post({ v: PROTOCOL_VERSION, type: "status", level: failed ? "error" : "info", message: failed && failed.type === "run-failed" ? `Verification failed: ${failed.error.message}` : run.report?.summary.line ?? "Verification finished" });
    this.#scheduleRebuild();
  }

  async #probeFrom(node?: TreeNode): Promise<void> {
    const cluster = this.#activeCluster(node?.clusterId);
    if (!cluster || !node?.pod) {
      void vscode.window.showInformationMessage("Flat Network: pick a pod in the Flat Network view, then \"Probe from this pod to…\".");
      return;
    }
    const targets = cluster.pods.filter((p) => `${p.namespace}/${p.name}` !== node.pod && p.ips.length > 0 && !p.hostNetwork);
    const choice = await vscode.window.showQuickPick(
      targets.map((p) => ({ label: `${p.namespace}/${p.name}`, description: p.ips.join(", "), detail: `on ${p.node}` })),
      { title: `Probe from ${node.pod} to…`, matchOnDescription: true, matchOnDetail: true },
    );
    if (!choice) return;
    // The engine probes the whole plan (pairs share responders); the matrix then opens on this pod's node pair.
    const target = targets.find((p) => `${p.namespace}/${p.name}` === choice.label);
    const source = cluster.pods.find((p) => `${p.namespace}/${p.name}` === node.pod);
    await this.verify(cluster.id, source && target ? { src: source.node, dst: target.node } : undefined);
  }

  async #copyIp(node?: TreeNode): Promise<void> {
    const ips = node?.ips ?? [];
    const ip = ips.length > 1 ? await vscode.window.showQuickPick(ips, { title: "Copy which IP?" }) : ips[0];
    if (!ip) return;
    await vscode.env.clipboard.writeText(ip);
    vscode.window.setStatusBarMessage(`Copied ${ip}`, 3000);
  }

  async #openReport(clusterId?: string): Promise<void> {
    const cluster = this.#activeCluster(clusterId);
    const run = cluster ? this.#runs.get(cluster.id) : undefined;
    if (!run || run.events.length === 0) {
      void vscode.window.showInformationMessage("Flat Network: no verification has run yet. Run \"Flat Network: Verify flat connectivity\" first.");
      return;
    }
    const content: ProbeReport | { partial: true; results: PairResult[] } = run.report ?? { partial: true, results: run.matrix.results() };
    const document = await vscode.workspace.openTextDocument({ language: "json", content: JSON.stringify(content, null, 2) });
    await vscode.window.showTextDocument(document, { preview: false });
  }

  /** State for tests and the e2e check: what the tree and runs hold right now. */
  snapshotForTests(): { clusters: ClusterView[]; problems: number; runs: { clusterId: string; results: number; finished: boolean }[] } {
    return {
      clusters: this.#clusters(),
      problems: this.#provider.model.problemCount(),
      runs: [...this.#runs.values()].map((r) => ({ clusterId: r.clusterId, results: r.matrix.results().length, finished: r.matrix.finished })),
    };
  }

  dispose(): void {
    clearTimeout(this.#rebuildTimer);
    for (const run of this.#runs.values()) run.process?.cancel();
    for (const source of this.#sources) source.dispose();
    for (const panel of this.#panels.values()) panel.dispose();
    for (const disposable of this.#disposables.splice(0)) disposable.dispose();
  }
}

