/**
 * Runs a real VS Code (code-server, the npm package) with the built .vsix installed into a throwaway profile,
 * on 127.0.0.1 only. Everything it starts is one process group, ended by that group's id.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Frame, Page } from "playwright-core";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const vsixPath = join(repoRoot, "apps", "vscode", "dist", "flatnet-vscode.vsix");
const codeServerBin = join(repoRoot, "node_modules", "code-server", "out", "node", "entry.js");
const nodeBin = join(repoRoot, "node_modules", ".bin", "node");

export function codeServerMissingReason(): string | undefined {
  if (!existsSync(codeServerBin)) return `code-server is not installed (${codeServerBin}); it is a devDependency of @flatnet/vscode`;
  if (!existsSync("/usr/bin/chromium")) return "/usr/bin/chromium is not installed (apt-get install chromium)";
  return undefined;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Runs code-server's postinstall on Node 24 once (apps/vscode/scripts/setup-code-server.sh; a no-op when done). */
export async function ensureCodeServer(): Promise<void> {
  await promisify(execFile)("sh", [join(repoRoot, "apps", "vscode", "scripts", "setup-code-server.sh")], { timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
}

/** Builds the .vsix when it is missing or older than the extension's sources, so the test never runs a stale one. */
export async function ensureVsix(): Promise<void> {
  const app = join(repoRoot, "apps", "vscode");
  const sources = Math.max(newestMtime(join(app, "src")), statSync(join(app, "package.json")).mtimeMs);
  if (existsSync(vsixPath) && statSync(vsixPath).mtimeMs >= sources) return;
  await promisify(execFile)("npm", ["run", "build"], { cwd: app, timeout: 300_000, env: { ...process.env, PATH: `${join(repoRoot, "node_modules", ".bin")}:${process.env.PATH}` } });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface CodeServer {
  url: string;
  workspace: string;
  root: string;
  log: () => string;
  stop: () => Promise<void>;
}

/** `extraVsix`: more extensions to install next to flatnet's (stand-ins of other extensions). */
export async function startCodeServer(settings: Record<string, unknown>, options: { extraVsix?: string[] } = {}): Promise<CodeServer> {
  const root = mkdtempSync(join(tmpdir(), "fn-tv-code-"));
  const extensions = join(root, "extensions");
  const data = join(root, "data");
  const workspace = join(root, "workspace");
  for (const dir of [extensions, join(data, "User"), join(data, "Machine"), workspace]) mkdirSync(dir, { recursive: true });
  // code-server is a remote window: machine(-overridable) settings (flatnet.cli, flatnet.kubeconfig, ...) are read
  // from the remote machine's settings only, never from the user's.
  writeFileSync(join(data, "Machine", "settings.json"), JSON.stringify(settings));
  writeFileSync(
    join(data, "User", "settings.json"),
    JSON.stringify({
      "workbench.startupEditor": "none",
      "workbench.tips.enabled": false,
      "security.workspace.trust.enabled": false,
      "telemetry.telemetryLevel": "off",
      "extensions.autoCheckUpdates": false,
      "extensions.autoUpdate": false,
      "workbench.enableExperiments": false,
      "chat.disableAIFeatures": true,
      ...settings,
    }),
  );
  const base = [codeServerBin, "--extensions-dir", extensions, "--user-data-dir", data];
  for (const vsix of [vsixPath, ...(options.extraVsix ?? [])]) await promisify(execFile)(nodeBin, [...base, "--install-extension", vsix], { timeout: 120_000 });
  const port = await freePort();
  let output = "";
  const child: ChildProcess = spawn(
    nodeBin,
    [...base, "--auth", "none", "--bind-addr", `127.0.0.1:${port}`, "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override", workspace],
    { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: join(root, "no-kubeconfig") } },
  );
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }
    rmSync(root, { recursive: true, force: true });
  };
  // Bounded poll on the real condition: the server answers /healthz.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`code-server exited with ${child.exitCode}: ${output.slice(-2000)}`);
    }
    const ok = await fetch(`${url}healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer on ${url} within 60 s: ${output.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { url, workspace, root, log: () => output, stop };
}

/** The webview frame that holds `selector` (webviews are nested iframes); bounded poll on that condition. */
export async function findFrame(page: Page, selector: string, timeoutMs: number): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of page.frames()) {
      if (await frame.$(selector).catch(() => null)) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no frame with ${selector} within ${timeoutMs} ms`);
    await page.waitForTimeout(200);
  }
}

/**
 * Runs a command from the palette by its title (F1, the title into the palette's own input, the row appears, Enter
 * on that input). Writing to the input, not to whatever has the keyboard, keeps a focus change in the workbench
 * (a view finishing its layout) from taking the typed title.
 */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ state: "visible", timeout: 10_000 });
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor({ timeout: 10_000 });
  await input.press("Enter");
}
