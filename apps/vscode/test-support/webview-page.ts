/**
 * Serves the real webview (bundle built from src with esbuild, HTML from renderWebviewHtml, strict CSP) to
 * headless Chromium with a stand-in for acquireVsCodeApi that records what the page posts.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { type Browser, type Page, chromium } from "playwright-core";
import { makeNonce, renderWebviewHtml } from "../src/panels/html.ts";
import type { HostMessage, ViewKind } from "../src/protocol.ts";
import { THEMES, type ThemeKind } from "./themes.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const appRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

export function chromiumMissingReason(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
}

/** Bundles the webview once into a temp dir with its CSS and codicons; returns the dir and a cleanup. */
export async function buildWebviewBundle(): Promise<{ dir: string; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), "fn-tv-webview-"));
  await build({
    entryPoints: [join(appRoot, "src", "webview", "main.ts")],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    minify: true,
    outfile: join(dir, "main.js"),
    alias: { "@flatnet/core": join(appRoot, "..", "..", "packages", "core", "src", "index.ts") },
    logLevel: "silent",
  });
  const require = createRequire(import.meta.url);
  const codicons = dirname(require.resolve("@vscode/codicons/dist/codicon.css"));
  cpSync(join(appRoot, "src", "webview", "style.css"), join(dir, "style.css"));
  cpSync(join(codicons, "codicon.css"), join(dir, "codicon.css"));
  cpSync(join(codicons, "codicon.ttf"), join(dir, "codicon.ttf"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface WebviewPage {
  page: Page;
  post(message: HostMessage | unknown): Promise<void>;
  posted(): Promise<{ type: string; [key: string]: unknown }[]>;
  cspViolations(): Promise<string[]>;
  /** Waits (bounded poll on the page's own state) until the page has posted a message of this type. */
  waitForPosted(type: string, count?: number): Promise<void>;
}

export async function openWebview(browser: Browser, bundleDir: string, view: ViewKind, theme: ThemeKind, viewport = { width: 1100, height: 900 }): Promise<WebviewPage> {
  const nonce = makeNonce();
  const url = (name: string) => pathToFileURL(join(bundleDir, name)).toString();
  const html = renderWebviewHtml({ view, title: view, cspSource: "file:", nonce, scriptUri: url("main.js"), styleUri: url("style.css"), codiconUri: url("codicon.css") });
  const htmlPath = join(bundleDir, `${view}-${theme}.html`);
  mkdirSync(bundleDir, { recursive: true });
  writeFileSync(htmlPath, html);
  const page = await browser.newPage({ viewport });
  const { bodyClass, vars } = THEMES[theme];
  // A string, not a function: loaders such as tsx wrap functions with helpers (__name) the page does not have.
  await page.addInitScript(`
    window.__posted = [];
    window.__csp = [];
    let state;
    window.acquireVsCodeApi = function () {
      return {
        postMessage: function (m) { window.__posted.push(m); },
        getState: function () { return state; },
        setState: function (s) { state = s; },
      };
    };
    document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });
    // VS Code sets the theme on <body> before the page's scripts run; so do we.
    document.addEventListener("DOMContentLoaded", function () {
      document.body.classList.add(${JSON.stringify(bodyClass)});
      const vars = ${JSON.stringify(vars)};
      for (const name of Object.keys(vars)) document.body.style.setProperty(name, vars[name]);
    });
  `);
  await page.goto(pathToFileURL(htmlPath).toString());
  const wp: WebviewPage = {
    page,
    post: async (message) => {
      await page.evaluate((m) => window.postMessage(m, "*"), message as object);
    },
    posted: () => page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted),
    cspViolations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp),
    waitForPosted: async (type, count = 1) => {
      await page.waitForFunction(({ type, count }) => (window as unknown as { __posted: { type: string }[] }).__posted.filter((m) => m.type === type).length >= count, { type, count }, { timeout: 10_000 });
    },
  };
  await wp.waitForPosted("ready");
  return wp;
}

export function resultsDir(): string {
  const dir = join(appRoot, "..", "..", "test-results", "vscode");
  mkdirSync(dir, { recursive: true });
  return dir;
}
