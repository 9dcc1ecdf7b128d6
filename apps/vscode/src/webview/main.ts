/**
 * Webview entry: validates every host message (protocol.ts) and routes it to the topology or matrix view named
 * by `<body data-view>`. Talks to the host only through the typed protocol.
 */
import "./zod-jitless.ts";
import type { ClusterView } from "../model/cluster-view.ts";
import { PROTOCOL_VERSION, type WebviewMessage, parseHostMessage } from "../protocol.ts";
import { h, icon } from "./dom.ts";
import type { PairPath } from "../model/pair-path.ts";
import { MatrixView } from "./matrix-view.ts";
import { renderPairPath } from "./pair-path-view.ts";
import { renderTopology } from "./topology.ts";

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const view = document.body.dataset.view === "matrix" ? "matrix" : "topology";
const app = document.getElementById("app")!;
const statusBar = h("div", { class: "status-line", role: "status" });
document.body.prepend(statusBar);

const post = (message: WebviewMessage) => vscode.postMessage(message);
const copy = (text: string) => post({ v: PROTOCOL_VERSION, type: "copy", text });
const rendered = (ms: number) => post({ v: PROTOCOL_VERSION, type: "rendered", view, ms });
const showStatus = (level: "info" | "warning" | "error", text: string) => {
  statusBar.replaceChildren(icon(level), ` ${text}`);
  statusBar.className = `status-line ${level}`;
};

// The state survives a reload: the host's serializer reads clusterId back to reopen the panel on its cluster.
type SavedState = { selected?: [string, string]; clusterId?: string };
const saved = (vscode.getState() ?? {}) as SavedState;
const saveState = (state: SavedState) => vscode.setState({ ...((vscode.getState() ?? {}) as object), ...state });
let cluster: ClusterView | null = null;
let path: PairPath | null = null;
const matrix =
  view === "matrix"
    ? new MatrixView(app, {
        verify: () => post({ v: PROTOCOL_VERSION, type: "verify" }),
        openReport: () => post({ v: PROTOCOL_VERSION, type: "open-report" }),
        probePair: (src, dst) => post({ v: PROTOCOL_VERSION, type: "probe-pair", src, dst }),
        showPath: (pairId) => post({ v: PROTOCOL_VERSION, type: "show-path", pairId }),
        copy,
        rendered,
        saveState,
      }, Array.isArray(saved.selected) && saved.selected.length === 2 ? { selected: saved.selected } : {})
    : undefined;

function renderTopologyNow(): void {
  const start = performance.now();
  renderTopology(app, cluster, { copy });
  if (path) {
    const broken = path.brokenAt === undefined ? undefined : path.steps[path.brokenAt];
    if (broken) app.querySelector(`section.node[data-node="${CSS.escape(broken.name)}"]`)?.classList.add("path-breaks");
    app.append(renderPairPath(path, { copy }));
  }
  requestAnimationFrame(() => rendered(performance.now() - start));
}

window.addEventListener("message", (event: MessageEvent) => {
  const parsed = parseHostMessage(event.data);
  if (!parsed.success) return showStatus("error", parsed.error.message);
  const message = parsed.data;
  switch (message.type) {
    case "cluster":
      cluster = message.cluster;
      if (cluster) saveState({ clusterId: cluster.id });
      if (matrix) matrix.setCluster(cluster);
      else renderTopologyNow();
      break;
    case "probe-events":
      matrix?.apply(message.events);
      break;
    case "path":
      path = message.path;
      if (!matrix) renderTopologyNow();
      break;
    case "select":
      matrix?.select(message.src, message.dst);
      break;
    case "status":
      showStatus(message.level, message.message);
      break;
  }
});

// The page is the source of truth for its own render timing (benchmarks and tests read it).
Object.assign(window, { flatnet: { matrix, view } });
post({ v: PROTOCOL_VERSION, type: "ready", view });
