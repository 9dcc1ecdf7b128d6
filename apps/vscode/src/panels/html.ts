/**
 * The HTML shell of both webviews. Pure (no vscode import) so the headless-Chromium tests render exactly what
 * the panel serves. CSP: nothing by default; scripts only with the per-load nonce; styles, fonts and images
 * only from the bundle (`cspSource`).
 */
import type { ViewKind } from "../protocol.ts";

export interface WebviewHtmlOptions {
  view: ViewKind;
  title: string;
  /** `webview.cspSource` in VS Code; the file origin in tests. */
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
  codiconUri: string;
}

/** A 128-bit random nonce, base64: fresh per HTML load so an injected script cannot guess it. */
export function makeNonce(random: (bytes: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b)): string {
  const bytes = random(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join("; ");
}

export function renderWebviewHtml(options: WebviewHtmlOptions): string {
  const a = escapeAttribute;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${a(contentSecurityPolicy(options.cspSource, options.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${a(options.codiconUri)}">
<link rel="stylesheet" href="${a(options.styleUri)}">
<title>${a(options.title)}</title>
</head>
<body data-view="${a(options.view)}">
<main id="app" aria-live="polite"><p class="empty">Loading…</p></main>
<script nonce="${a(options.nonce)}" src="${a(options.scriptUri)}"></script>
</body>
</html>
`;
}
