/**
 * One webview panel (topology or matrix): strict CSP with a fresh nonce, resources only from dist/webview,
 * and every incoming message validated before it is acted on.
 */
import * as vscode from "vscode";
import { type HostMessage, type ViewKind, type WebviewMessage, parseWebviewMessage } from "../protocol.ts";
import { makeNonce, renderWebviewHtml } from "./html.ts";

const TITLES: Record<ViewKind, string> = { topology: "Flat Network: Topology", matrix: "Flat Network: Connectivity Matrix" };

export class WebviewPanelHost implements vscode.Disposable {
  readonly #panel: vscode.WebviewPanel;
  readonly #disposables: vscode.Disposable[] = [];
  #ready = false;
  #queue: HostMessage[] = [];

  constructor(
    readonly view: ViewKind,
    extensionUri: vscode.Uri,
    private readonly onMessage: (message: WebviewMessage, host: WebviewPanelHost) => void,
    private readonly onInitial: (host: WebviewPanelHost) => void,
    onDispose: () => void,
    /** A panel VS Code restored after a reload (WebviewPanelSerializer); a new one otherwise. */
    restored?: vscode.WebviewPanel,
  ) {
    const bundle = vscode.Uri.joinPath(extensionUri, "dist", "webview");
    const options = { enableScripts: true, localResourceRoots: [bundle] };
    this.#panel = restored ?? vscode.window.createWebviewPanel(`flatnet.${view}`, TITLES[view], vscode.ViewColumn.Active, options);
    if (restored) restored.webview.options = options;
    this.#panel.iconPath = vscode.Uri.joinPath(extensionUri, "media", "flatnet.svg");
    const webview = this.#panel.webview;
    webview.html = renderWebviewHtml({
      view,
      title: TITLES[view],
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(bundle, "main.js")).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(bundle, "style.css")).toString(),
      codiconUri: webview.asWebviewUri(vscode.Uri.joinPath(bundle, "codicon.css")).toString(),
    });
    this.#disposables.push(
      webview.onDidReceiveMessage((raw: unknown) => {
        const parsed = parseWebviewMessage(raw);
        if (!parsed.success) {
          void vscode.window.showWarningMessage(`Flat Network: ignored a webview message: ${parsed.error.message}`);
          return;
        }
        if (parsed.data.type === "ready") {
          // The initial state covers everything queued before the page loaded (or reloaded).
          this.#ready = true;
          this.#queue = [];
          this.onInitial(this);
        }
        this.onMessage(parsed.data, this);
      }),
      this.#panel.onDidDispose(() => {
        onDispose();
        this.dispose();
      }),
    );
  }

  post(message: HostMessage): void {
    if (this.#ready) void this.#panel.webview.postMessage(message);
    else this.#queue.push(message);
  }

  reveal(): void {
    this.#panel.reveal();
  }

  dispose(): void {
    for (const disposable of this.#disposables.splice(0)) disposable.dispose();
    this.#panel.dispose();
  }
}
