/**
 * The one object that owns the extension's state (settings, sources, runs, panels, tree view, status) and every
 * disposable. Data flow: sources -> coalesced rebuild -> TreeModel -> tree view / badge / panels. The commands
 * (src/commands/) and Verify (src/verify.ts) act on it.
 */
import { type FSWatcher, watch } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { ProbeEvent, ProbeReport } from "@flatnet/core";
import * as vscode from "vscode";
import type { ClusterView } from "./model/cluster-view.ts";
import type { HeatmapModel } from "./model/matrix.ts";
import type { PairPath } from "./model/pair-path.ts";
import { findInventoryProblems, findProbeProblems } from "./model/problems.ts";
import { type ClusterEntry, TreeModel, type TreeNode } from "./model/tree.ts";
import { WebviewPanelHost } from "./panels/webview-panel.ts";
import { podNetworkNode } from "./pod-network-node.ts";
import type { ProbeRun } from "./probe/probe-runner.ts";
import { PROTOCOL_VERSION, type ViewKind, type WebviewMessage } from "./protocol.ts";
import { type Settings, parseSettings, scopeSettings } from "./settings.ts";
import { FixtureSource } from "./sources/fixture-source.ts";
import { KubeSource } from "./sources/kube-source.ts";
import { selectContexts, selectKubeconfigPaths } from "./sources/kube-selection.ts";
import { loadKubeConfig } from "./sources/kubeconfig.ts";
import { type KubernetesTools, connectKubernetesTools } from "./sources/kubernetes-tools.ts";
import { parseLabelSelector } from "./sources/kube-mapping.ts";
import { LabSource } from "./sources/lab-source.ts";
import type { ClusterSource } from "./sources/source.ts";
import { FlatnetTreeProvider } from "./tree-provider.ts";

export interface RunState {
  events: ProbeEvent[];
  matrix: HeatmapModel;
  report: ProbeReport | undefined;
  process: ProbeRun | undefined;
}

export type WebviewMessageHandler = (message: WebviewMessage, host: WebviewPanelHost) => void;

export class FlatnetContext implements vscode.Disposable {
  readonly #disposables: vscode.Disposable[] = [];
  readonly provider = new FlatnetTreeProvider();
  readonly #treeView: vscode.TreeView<TreeNode>;
  readonly output = vscode.window.createOutputChannel("Flat Network", { log: true });
  readonly status = vscode.window.createStatusBarItem("flatnet.verdict", vscode.StatusBarAlignment.Left, 10);
  #settings: Settings = parseSettings(() => undefined).settings;
  /** `flatnet.cli` as set (undefined: not set, discover it) and the workspace's command settings, if any. */
  #cliSetting: string[] | undefined;
  #workspaceCommand: string | undefined;
  #tools: KubernetesTools | undefined;
  #kubeconfigs: string[] = [];
  #watchers: FSWatcher[] = [];
  #watchTimer: ReturnType<typeof setTimeout> | undefined;
  #sources: ClusterSource[] = [];
  readonly #panels = new Map<ViewKind, WebviewPanelHost>();
  readonly runs = new Map<string, RunState>();
  /** The pair path the topology shows (it survives the panel's reload through #sendInitial). */
  shownPath: { clusterId: string; path: PairPath } | undefined;
  #activeClusterId: string | undefined;
  #rebuildTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly extension: vscode.ExtensionContext,
    private readonly onWebviewMessage: WebviewMessageHandler,
  ) {
    this.#treeView = vscode.window.createTreeView("flatnet.clusters", { treeDataProvider: this.provider, showCollapseAll: true });
    this.status.name = "Flat Network verdict";
    this.status.command = "flatnet.showMatrix";
    this.#disposables.push(this.provider, this.#treeView, this.output, this.status);
  }

  get settings(): Settings {
    return this.#settings;
  }

  get cliSetting(): string[] | undefined {
    return this.#cliSetting;
  }

  get workspaceCommand(): string | undefined {
    return this.#workspaceCommand;
  }

  get kubeconfigs(): readonly string[] {
    return this.#kubeconfigs;
  }

  /** Disposed with the context. */
  track(...disposables: vscode.Disposable[]): void {
    this.#disposables.push(...disposables);
  }

  start(): void {
    for (const view of ["matrix", "topology"] as const) {
      this.#disposables.push(
        vscode.window.registerWebviewPanelSerializer(`flatnet.${view}`, {
          deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
            const clusterId = (state as { clusterId?: unknown } | undefined)?.clusterId;
            this.showPanel(view, typeof clusterId === "string" ? clusterId : undefined, panel);
          },
        }),
      );
    }
    this.#disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("flatnet")) this.restartSources();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.restartSources()),
    );
    this.restartSources();
    void connectKubernetesTools(() => this.restartSources(), (line) => this.output.info(line)).then((tools) => {
      if (!tools) return;
      this.#tools = tools;
      this.#disposables.push(...tools.disposables);
      tools.explorer?.registerNodeContributor({
        contributesChildren: (parent) => parent?.nodeType === "context",
        getChildren: async (parent) => (parent?.nodeType === "context" && parent.name ? [podNetworkNode(this.provider, () => this.clusters(), parent.name)] : []),
      });
      this.output.info(`following the Kubernetes extension: kubeconfig ${tools.choice.kubeconfigPath ?? "(its default)"}`);
      this.restartSources();
    });
  }

  /** Restarts the sources when a kubeconfig file changes (kubectl replaces files by rename: watch the folder). */
  #watchKubeconfigs(paths: readonly string[]): void {
    for (const watcher of this.#watchers.splice(0)) watcher.close();
    for (const path of paths) {
      try {
        const watcher = watch(dirname(path), (_event, name) => {
          if (name !== null && name !== basename(path)) return;
          clearTimeout(this.#watchTimer);
          this.#watchTimer = setTimeout(() => this.restartSources(), this.#settings.refreshDebounceMs);
        });
        watcher.on("error", () => watcher.close());
        this.#watchers.push(watcher);
      } catch (error) {
        this.output.warn(`cannot watch kubeconfig "${path}": ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  #readSettings(): void {
    const config = vscode.workspace.getConfiguration("flatnet");
    const scoped = scopeSettings((key) => config.inspect(key), vscode.workspace.isTrusted);
    const { settings, problems } = parseSettings(scoped.read);
    const cli = scoped.read("cli");
    this.#cliSetting = Array.isArray(cli) && cli.length > 0 ? settings.cli : undefined;
    this.#workspaceCommand = scoped.workspaceCommand;
    // Recorded fixtures may be named relative to the workspace (the demo workspace does).
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const resolve = (path: string) => (path && folder && !isAbsolute(path) ? join(folder, path) : path);
    this.#settings = { ...settings, fixture: resolve(settings.fixture), "probe.replay": resolve(settings["probe.replay"]) };
    for (const problem of problems) {
      this.output.warn(problem);
      void vscode.window.showWarningMessage(`Flat Network: ${problem}`);
    }
  }

  restartSources(): void {
    for (const source of this.#sources) source.dispose();
    this.#sources = [];
    this.#readSettings();
    const s = this.#settings;
    if (s.fixture) this.#sources.push(new FixtureSource(s.fixture));
    if (s["lab.enabled"]) this.#sources.push(new LabSource(s["lab.stateDir"], { pollMs: 5000, debounceMs: s.refreshDebounceMs }));
    if (s["kubernetes.enabled"]) this.#sources.push(...this.#kubeSources(s));
    for (const source of this.#sources) source.start(() => this.scheduleRebuild());
    this.scheduleRebuild();
  }

  #kubeSources(s: Settings): ClusterSource[] {
    const selection = { settingPaths: s.kubeconfig, settingContexts: s.contexts, tools: this.#tools?.choice, env: process.env.KUBECONFIG, home: homedir() };
    const paths = selectKubeconfigPaths(selection);
    this.#watchKubeconfigs(paths);
    const { config, errors, loaded } = loadKubeConfig(paths);
    this.#kubeconfigs = loaded;
    for (const error of errors) this.output.error(error);
    if (loaded.length === 0) {
      this.output.info(`no kubeconfig file among ${paths.join(", ")}`);
      return [];
    }
    const contexts = selectContexts(selection, config.getCurrentContext());
    this.output.info(`kubeconfig ${loaded.join(", ")}${this.#tools ? " (from the Kubernetes extension)" : ""}: showing ${contexts.length > 0 ? contexts.join(", ") : "no context"}`);
    const known = new Set(config.getContexts().map((c) => c.name));
    let selector: Record<string, string>;
    try {
      selector = parseLabelSelector(s.agentLabelSelector);
    } catch (error) {
      this.output.warn(String(error));
      selector = {};
    }
    return contexts.flatMap((context) => {
      if (!known.has(context)) {
        this.output.warn(`context "${context}" is not in ${loaded.join(", ")}`);
        return [];
      }
      return [new KubeSource(config, { context, agentSelector: selector, debounceMs: s.refreshDebounceMs })];
    });
  }

  scheduleRebuild(): void {
    if (this.#rebuildTimer) return;
    this.#rebuildTimer = setTimeout(() => {
      this.#rebuildTimer = undefined;
      this.#rebuild();
    }, Math.min(this.#settings.refreshDebounceMs, 100));
  }

  clusters(): ClusterView[] {
    return this.#sources.flatMap((source) => source.view() ?? []);
  }

  #rebuild(): void {
    const clusters = this.clusters();
    const entries: ClusterEntry[] = clusters.map((cluster) => {
      const run = this.runs.get(cluster.id);
      return { cluster, problems: [...findInventoryProblems(cluster), ...(run ? findProbeProblems(run.matrix.results()) : [])] };
    });
    const model = new TreeModel(entries);
    this.provider.setModel(model);
    const count = model.problemCount();
    this.#treeView.badge = count > 0 ? { value: count, tooltip: `${count} flat-network problems` } : undefined;
    const troubled = clusters.find((c) => c.status?.state === "reconnecting" || c.status?.state === "error");
    this.#treeView.message = clusters.length === 0 ? "No cluster found: no kubeconfig context and no flatnet lab on this machine." : troubled ? `${troubled.name}: ${troubled.status?.message ?? troubled.status?.state}` : undefined;
    void vscode.commands.executeCommand("setContext", "flatnet.hasCluster", clusters.length > 0);
    void vscode.commands.executeCommand("setContext", "flatnet.hasLab", clusters.some((c) => c.source === "lab" && c.nodes.length > 0));
    if (!this.#activeClusterId || !clusters.some((c) => c.id === this.#activeClusterId)) this.#activeClusterId = clusters[0]?.id;
    const active = clusters.find((c) => c.id === this.#activeClusterId) ?? null;
    for (const panel of this.#panels.values()) panel.post({ v: PROTOCOL_VERSION, type: "cluster", cluster: active });
  }

  /** The cluster the panels show; a given id makes that cluster the active one. */
  activeCluster(clusterId?: string): ClusterView | undefined {
    if (clusterId) this.#activeClusterId = clusterId;
    return this.clusters().find((c) => c.id === this.#activeClusterId);
  }

  /** The open panel of this kind, if any. */
  panel(view: ViewKind): WebviewPanelHost | undefined {
    return this.#panels.get(view);
  }

  showPanel(view: ViewKind, clusterId?: string, restored?: vscode.WebviewPanel): WebviewPanelHost {
    this.activeCluster(clusterId);
    const open = this.#panels.get(view);
    if (open) {
      restored?.dispose();
      open.reveal();
      this.#sendInitial(open);
      return open;
    }
    const panel = new WebviewPanelHost(
      view,
      this.extension.extensionUri,
      this.onWebviewMessage,
      (host) => this.#sendInitial(host),
      () => this.#panels.delete(view),
      restored,
    );
    this.#panels.set(view, panel);
    return panel;
  }

  #sendInitial(panel: WebviewPanelHost): void {
    const cluster = this.activeCluster() ?? null;
    panel.post({ v: PROTOCOL_VERSION, type: "cluster", cluster });
    const run = cluster ? this.runs.get(cluster.id) : undefined;
    if (panel.view === "matrix" && run) panel.post({ v: PROTOCOL_VERSION, type: "probe-events", events: run.events });
    if (panel.view === "topology") panel.post({ v: PROTOCOL_VERSION, type: "path", path: cluster && this.shownPath?.clusterId === cluster.id ? this.shownPath.path : null });
  }

  dispose(): void {
    clearTimeout(this.#rebuildTimer);
    clearTimeout(this.#watchTimer);
    for (const watcher of this.#watchers.splice(0)) watcher.close();
    for (const run of this.runs.values()) run.process?.cancel();
    for (const source of this.#sources) source.dispose();
    for (const panel of this.#panels.values()) panel.dispose();
    for (const disposable of this.#disposables.splice(0)) disposable.dispose();
  }
}
