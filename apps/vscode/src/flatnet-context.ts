/**
 * The one object that owns everything the extension creates (sources, tree view, panels, runs, commands) and
 * disposes it all. Data flow: sources -> coalesced rebuild -> TreeModel -> tree view / badge / panels.
 */
import { accessSync, constants, statSync, type FSWatcher, watch } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { PairResult, ProbeEvent, ProbeReport } from "@flatnet/core";
import * as vscode from "vscode";
import type { ClusterView } from "./model/cluster-view.ts";
import { HeatmapModel } from "./model/matrix.ts";
import { type PairPath, pairPath } from "./model/pair-path.ts";
import { findInventoryProblems, findProbeProblems } from "./model/problems.ts";
import { type ClusterEntry, TreeModel, type TreeNode } from "./model/tree.ts";
import { WebviewPanelHost } from "./panels/webview-panel.ts";
import { findCli, labNeedsRoot, shellLine } from "./probe/find-cli.ts";
import { buildProbeCommand } from "./probe/probe-command.ts";
import { type ProbeRun, replayProbeRun, spawnProbeRun } from "./probe/probe-runner.ts";
import { PROTOCOL_VERSION, type ViewKind, type WebviewMessage } from "./protocol.ts";
import { type Settings, parseSettings, scopeSettings } from "./settings.ts";
import { FixtureSource } from "./sources/fixture-source.ts";
import { KubeSource } from "./sources/kube-source.ts";
import { selectContexts, selectKubeconfigPaths } from "./sources/kube-selection.ts";
import { loadKubeConfig } from "./sources/kubeconfig.ts";
import { type ExplorerNode, type ExplorerParent, type KubernetesTools, connectKubernetesTools } from "./sources/kubernetes-tools.ts";
import { parseLabelSelector } from "./sources/kube-mapping.ts";
import { LabSource, labPodShell, readLabState } from "./sources/lab-source.ts";
import type { ClusterSource } from "./sources/source.ts";
import { FlatnetTreeProvider } from "./tree-provider.ts";

interface RunState {
  clusterId: string;
  events: ProbeEvent[];
  matrix: HeatmapModel;
  report: ProbeReport | undefined;
  process: ProbeRun | undefined;
}

export class FlatnetContext implements vscode.Disposable {
  readonly #disposables: vscode.Disposable[] = [];
  readonly #provider = new FlatnetTreeProvider();
  readonly #treeView: vscode.TreeView<TreeNode>;
  readonly #output = vscode.window.createOutputChannel("Flat Network", { log: true });
  readonly #status = vscode.window.createStatusBarItem("flatnet.verdict", vscode.StatusBarAlignment.Left, 10);
  #settings: Settings = parseSettings(() => undefined).settings;
  /** `flatnet.cli` as set (undefined: not set, discover it) and the workspace's command settings, if any. */
  #cliSetting: string[] | undefined;
  #workspaceCommand: string | undefined;
  #tools: KubernetesTools | undefined;
  #kubeconfigs: string[] = [];
  #watchers: FSWatcher[] = [];
  #watchTimer: ReturnType<typeof setTimeout> | undefined;
  #sources: ClusterSource[] = [];
  #panels = new Map<ViewKind, WebviewPanelHost>();
  #runs = new Map<string, RunState>();
  /** The pair path the topology shows (it survives the panel's reload through #sendInitial). */
  #shownPath: { clusterId: string; path: PairPath } | undefined;
  #activeClusterId: string | undefined;
  #rebuildTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly extension: vscode.ExtensionContext) {
    this.#treeView = vscode.window.createTreeView("flatnet.clusters", { treeDataProvider: this.#provider, showCollapseAll: true });
    this.#status.name = "Flat Network verdict";
    this.#status.command = "flatnet.showMatrix";
    this.#disposables.push(this.#provider, this.#treeView, this.#output, this.#status);
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
    command("flatnet.showPairPath", (node?: TreeNode) => node?.pairId && this.#showPairPath(node.pairId, node.clusterId));
    command("flatnet.cancelVerify", () => this.cancelVerify());
    command("flatnet.podTerminal", (node?: TreeNode) => this.#podTerminal(node));
    command("flatnet.labUp", () => this.#labUp());
    for (const view of ["matrix", "topology"] as const) {
      this.#disposables.push(
        vscode.window.registerWebviewPanelSerializer(`flatnet.${view}`, {
          deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
            const clusterId = (state as { clusterId?: unknown } | undefined)?.clusterId;
            this.#showPanel(view, typeof clusterId === "string" ? clusterId : undefined, panel);
          },
        }),
      );
    }
    this.#disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("flatnet")) this.#restartSources();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.#restartSources()),
    );
    this.#restartSources();
    void connectKubernetesTools(() => this.#restartSources(), (line) => this.#output.info(line)).then((tools) => {
      if (!tools) return;
      this.#tools = tools;
      this.#disposables.push(...tools.disposables);
      tools.explorer?.registerNodeContributor({
        contributesChildren: (parent) => parent?.nodeType === "context",
        getChildren: async (parent) => (parent?.nodeType === "context" && parent.name ? [this.#podNetworkNode(parent.name)] : []),
      });
      this.#output.info(`following the Kubernetes extension: kubeconfig ${tools.choice.kubeconfigPath ?? "(its default)"}`);
      this.#restartSources();
    });
  }

  /** "Pod network" under a cluster in the Kubernetes extension's Cluster Explorer: the same tree as the sidebar. */
  #podNetworkNode(context: string): ExplorerNode {
    const clusterId = `kubernetes:${context}`;
    const wrap = (node: TreeNode): ExplorerNode => ({
      getTreeItem: () => this.#provider.getTreeItem(node),
      getChildren: async () => this.#provider.model.children(node).map(wrap),
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
        const root = this.#provider.model.roots().find((node) => node.clusterId === clusterId);
        if (!root) {
          const item = new vscode.TreeItem(`Not shown: Flat Network shows ${this.#clusters().filter((c) => c.source === "kubernetes").map((c) => c.name).join(", ") || "no context"}`);
          return [{ getTreeItem: () => item, getChildren: async () => [] }];
        }
        const verify = new vscode.TreeItem("Verify flat connectivity", vscode.TreeItemCollapsibleState.None);
        verify.iconPath = new vscode.ThemeIcon("run-all");
        verify.command = { command: "flatnet.verify", title: "Verify flat connectivity", arguments: [{ clusterId }] };
        return [{ getTreeItem: () => verify, getChildren: async () => [] }, ...this.#provider.model.children(root).map(wrap)];
      },
    };
  }

  /** Restarts the sources when a kubeconfig file changes (kubectl replaces files by rename: watch the folder). */
  #watchKubeconfigs(paths: readonly string[]): void {
    for (const watcher of this.#watchers.splice(0)) watcher.close();
    for (const path of paths) {
      try {
        const watcher = watch(dirname(path), (_event, name) => {
          if (name !== null && name !== basename(path)) return;
          clearTimeout(this.#watchTimer);
          this.#watchTimer = setTimeout(() => this.#restartSources(), this.#settings.refreshDebounceMs);
        });
        watcher.on("error", () => watcher.close());
        this.#watchers.push(watcher);
      } catch (error) {
        this.#output.warn(`cannot watch kubeconfig "${path}": ${error instanceof Error ? error.message : String(error)}`);
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
      this.#output.warn(problem);
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
    const selection = { settingPaths: s.kubeconfig, settingContexts: s.contexts, tools: this.#tools?.choice, env: process.env.KUBECONFIG, home: homedir() };
    const paths = selectKubeconfigPaths(selection);
    this.#watchKubeconfigs(paths);
    const { config, errors, loaded } = loadKubeConfig(paths);
    this.#kubeconfigs = loaded;
    for (const error of errors) this.#output.error(error);
    if (loaded.length === 0) {
      this.#output.info(`no kubeconfig file among ${paths.join(", ")}`);
      return [];
    }
    const contexts = selectContexts(selection, config.getCurrentContext());
    this.#output.info(`kubeconfig ${loaded.join(", ")}${this.#tools ? " (from the Kubernetes extension)" : ""}: showing ${contexts.length > 0 ? contexts.join(", ") : "no context"}`);
    const known = new Set(config.getContexts().map((c) => c.name));
    let selector: Record<string, string>;
    try {
      selector = parseLabelSelector(s.agentLabelSelector);
    } catch (error) {
      this.#output.warn(String(error));
      selector = {};
    }
    return contexts.flatMap((context) => {
      if (!known.has(context)) {
        this.#output.warn(`context "${context}" is not in ${loaded.join(", ")}`);
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
    void vscode.commands.executeCommand("setContext", "flatnet.hasLab", clusters.some((c) => c.source === "lab" && c.nodes.length > 0));
    if (!this.#activeClusterId || !clusters.some((c) => c.id === this.#activeClusterId)) this.#activeClusterId = clusters[0]?.id;
    const active = clusters.find((c) => c.id === this.#activeClusterId) ?? null;
    for (const panel of this.#panels.values()) panel.post({ v: PROTOCOL_VERSION, type: "cluster", cluster: active });
  }

  #activeCluster(clusterId?: string): ClusterView | undefined {
    if (clusterId) this.#activeClusterId = clusterId;
    return this.#clusters().find((c) => c.id === this.#activeClusterId);
  }

  #showPanel(view: ViewKind, clusterId?: string, restored?: vscode.WebviewPanel): WebviewPanelHost {
    this.#activeCluster(clusterId);
    let panel = this.#panels.get(view);
    if (panel && restored) restored.dispose();
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
      restored,
    );
    this.#panels.set(view, panel);
    return panel;
  }

  #sendInitial(panel: WebviewPanelHost): void {
    const cluster = this.#activeCluster() ?? null;
    panel.post({ v: PROTOCOL_VERSION, type: "cluster", cluster });
    const run = cluster ? this.#runs.get(cluster.id) : undefined;
    if (panel.view === "matrix" && run) panel.post({ v: PROTOCOL_VERSION, type: "probe-events", events: run.events });
    if (panel.view === "topology") panel.post({ v: PROTOCOL_VERSION, type: "path", path: cluster && this.#shownPath?.clusterId === cluster.id ? this.#shownPath.path : null });
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
      case "show-path":
        this.#showPairPath(message.pairId);
        break;
      case "rendered":
        this.#output.debug(`${host.view} rendered in ${message.ms.toFixed(1)} ms`);
        break;
      case "ready":
        break;
    }
  }

  /** Draws one pair of the cluster's last run in the topology: its hops, where it breaks, the findings and their fix. */
  #showPairPath(pairId: string, clusterId?: string): void {
    const cluster = this.#activeCluster(clusterId);
    const result = cluster ? this.#runs.get(cluster.id)?.matrix.results().find((r) => r.pair.id === pairId) : undefined;
    if (!cluster || !result) {
      void vscode.window.showWarningMessage(`Flat Network: pair "${pairId}" is not in the last run of this cluster; verify again to trace it.`);
      return;
    }
    this.#shownPath = { clusterId: cluster.id, path: pairPath(result) };
    this.#showPanel("topology", cluster.id).post({ v: PROTOCOL_VERSION, type: "path", path: this.#shownPath.path });
  }

  /** Runs the probe engine for a cluster and streams its results into the matrix; cancellable from the progress. */
  async verify(clusterId?: string, focus?: { src: string; dst: string }): Promise<void> {
    const cluster = this.#activeCluster(clusterId);
    if (!cluster) {
      void vscode.window.showErrorMessage("Flat Network: no cluster to verify. Start a flatnet lab or pick a Kubernetes context (flatnet.contexts).");
      return;
    }
    const s = this.#settings;
    const command = s["probe.replay"] ? undefined : await this.#probeCommand(cluster);
    if (command === null) return;
    const previous = this.#runs.get(cluster.id);
    previous?.process?.cancel();
    const run: RunState = { clusterId: cluster.id, events: [], matrix: new HeatmapModel(cluster.nodes.map((n) => n.name)), report: undefined, process: undefined };
    this.#runs.set(cluster.id, run);
    const panel = this.#showPanel("matrix", cluster.id);
    panel.post({ v: PROTOCOL_VERSION, type: "status", level: "info", message: `Verifying ${cluster.name}…` });
    this.#setVerdict(cluster.name, "running");
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
      onWarning: (message: string) => this.#output.warn(message),
    };
    if (command === undefined) run.process = replayProbeRun(s["probe.replay"], callbacks);
    else if ("error" in command) callbacks.onEvents([{ v: 1, type: "run-failed", runId: "spawn", error: { code: "ERR_PROBE_SPAWN", message: command.error } }]);
    else {
      this.#output.info(`running ${command.argv.join(" ")}${Object.keys(command.env).length ? ` with ${Object.entries(command.env).map(([k, v]) => `${k}=${v}`).join(" ")}` : ""}`);
      try {
        run.process = spawnProbeRun(command.argv, { ...process.env, ...command.env }, { name: cluster.name, source: cluster.source }, callbacks);
      } catch (error) {
        callbacks.onEvents([{ v: 1, type: "run-failed", runId: "spawn", error: { code: "ERR_PROBE_SPAWN", message: String(error) } }]);
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
    if (failed) this.#output.error(line);
    else this.#output.info(`${cluster.name}: ${line}`);
    panel.post({ v: PROTOCOL_VERSION, type: "status", level: failed ? "error" : "info", message: line });
    this.#setVerdict(cluster.name, failed ? "error" : (run.report?.summary.failed ?? 0) > 0 ? "failed" : "passed", line);
    this.#scheduleRebuild();
  }

  /** Cancels every running verification (the progress notification's Cancel does the same for its run). */
  cancelVerify(): void {
    for (const run of this.#runs.values()) run.process?.cancel();
  }

  #setVerdict(cluster: string, verdict: "running" | "passed" | "failed" | "error", detail?: string): void {
    const icon = { running: "$(sync~spin)", passed: "$(pass)", failed: "$(error)", error: "$(warning)" }[verdict];
    this.#status.text = `${icon} flatnet: ${verdict === "running" ? "verifying" : verdict === "error" ? "not verified" : verdict}`;
    this.#status.tooltip = `Flat Network, ${cluster}: ${detail ?? "verifying…"}`;
    this.#status.backgroundColor = verdict === "failed" ? new vscode.ThemeColor("statusBarItem.errorBackground") : verdict === "error" ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    this.#status.show();
  }

  /**
   * The probe command for a cluster, or why there is none (said in the run and in a message with a fix
   * button), or null when the user declined a command the workspace chose.
   */
  async #probeCommand(cluster: ClusterView): Promise<{ argv: string[]; env: Record<string, string> } | { error: string } | null> {
    if (this.#workspaceCommand !== undefined && this.extension.workspaceState.get("flatnet.allowedCommand") !== this.#workspaceCommand) {
      const always = "Allow for this workspace";
      const choice = await vscode.window.showWarningMessage(
        "Flat Network: this workspace's settings choose the command that Verify runs.",
        { modal: true, detail: `${this.#workspaceCommand}\n\nRun it? Settings in your user profile need no confirmation.` },
        "Run once",
        always,
      );
      if (!choice) return null;
      if (choice === always) await this.extension.workspaceState.update("flatnet.allowedCommand", this.#workspaceCommand);
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
      setting: this.#cliSetting,
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
    if (found.from !== "setting") this.#output.info(`flatnet command found ${found.from === "path" ? "on PATH" : "in the workspace's build"}: ${found.argv.join(" ")}`);
    let command;
    try {
      command = buildProbeCommand(found.argv, { cluster: this.#settings["probe.args"], lab: this.#settings["probe.labArgs"] }, cluster, this.#kubeconfigs);
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

  /** A terminal inside a lab pod's network namespace (the walkthrough's "open a terminal in a pod"). */
  async #podTerminal(node?: TreeNode): Promise<void> {
    const lab = this.#clusters().find((c) => c.id === node?.clusterId && c.source === "lab") ?? this.#clusters().find((c) => c.source === "lab");
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

  async #labUp(): Promise<void> {
    const command = this.#cliSetting ?? ["flatnet"];
    const uid = process.getuid?.();
    const terminal = vscode.window.createTerminal({ name: "flatnet lab" });
    terminal.show();
    const stateDir = this.#settings["lab.stateDir"];
    terminal.sendText(shellLine([...(uid === 0 ? [] : ["sudo"]), ...command, "lab", "up", "--prefix", this.#settings["lab.prefix"], "--state-dir", stateDir]));
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
    clearTimeout(this.#watchTimer);
    for (const watcher of this.#watchers.splice(0)) watcher.close();
    for (const run of this.#runs.values()) run.process?.cancel();
    for (const source of this.#sources) source.dispose();
    for (const panel of this.#panels.values()) panel.dispose();
    for (const disposable of this.#disposables.splice(0)) disposable.dispose();
  }
}

