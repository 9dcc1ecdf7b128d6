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

// The state survives a reload: the host's serializer reads clusterId back to reopen the panel on its cluster.
const saved = (vscode.getState() ?? {}) as { selected?: [string, string]; clusterId?: string };
const saveState = (state: { selected?: [string, string]; clusterId?: string }) => vscode.setState({ ...((vscode.getState() ?? {}) as object), ...state });
let cluster: ClusterView | null = null;
let path: PairPath | null = null;
const matrix =
  view === "matrix"
    ? new MatrixView(app, {
        verify: () => post({ v: PROTOCOL_VERSION, type: "verify" }),
        openReport: () => post({ v: PROTOCOL_VERSION, type: "open-report" }),
        probePair: (src, dst) => post({ v: PROTOCOL_VERSION, type: "probe-pair", src, dst }),
        showPath: (pairId) => post({ v: PROTOCOL_VERSION, type: "show-path", pairId }),
        copy: (text) => post({ v: PROTOCOL_VERSION, type: "copy", text }),
        rendered: (ms) => post({ v: PROTOCOL_VERSION, type: "rendered", view, ms }),
        saveState,
      }, Array.isArray(saved.selected) && saved.selected.length === 2 ? { selected: saved.selected } : {})
    : undefined;

function renderTopologyNow(): void {
  const start = performance.now();
  const copy = (text: string) => post({ v: PROTOCOL_VERSION, type: "copy", text });
  renderTopology(app, cluster, { copy });
  if (path) {
    const broken = path.brokenAt === undefined ? undefined : path.steps[path.brokenAt];
    if (broken) app.querySelector(`section.node[data-node="${CSS.escape(broken.name)}"]`)?.classList.add("path-breaks");
    app.append(renderPairPath(path, { copy }));
  }
  requestAnimationFrame(() => post({ v: PROTOCOL_VERSION, type: "rendered", view, ms: performance.now() - start }));
}

window.addEventListener("message", (event: MessageEvent) => {
  const parsed = parseHostMessage(event.data);
  if (!parsed.success) {
    statusBar.replaceChildren(icon("error"), ` ${parsed.error.message}`);
    statusBar.className = "status-line error";
    return;
  }
  const message = parsed.data;
  switch (message.type) {
    case "cluster":
      cluster = message.cluster as ClusterView | null;
      if (cluster) saveState({ clusterId: cluster.id });
      if (matrix) matrix.setCluster(cluster);
      else renderTopologyNow();
      break;
    case "probe-events":
      matrix?.apply(message.events);
      break;
    case "path":
      path = message.path as PairPath | null;
      if (!matrix) renderTopologyNow();
      break;
    case "select":
      matrix?.select(message.src, message.dst);
      break;
    case "status":
      statusBar.replaceChildren(icon(message.level === "info" ? "info" : message.level), ` ${message.message}`);
      statusBar.className = `status-line ${message.level}`;
      break;
  }
});

// The page is the source of truth for its own render timing (benchmarks and tests read it).
(window as unknown as { flatnet: unknown }).flatnet = { matrix, view };
post({ v: PROTOCOL_VERSION, type: "ready", view });
