import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The plugin binary `npm run build` produces; the tests exercise exactly what ships. */
export const PLUGIN = join(root, "apps", "agent", "dist", "cni", "flatnet");
export const REFERENCE_PLUGINS = "/usr/lib/cni";

export const isRoot = process.getuid?.() === 0;
export const haveReference = existsSync(join(REFERENCE_PLUGINS, "bridge")) && existsSync(join(REFERENCE_PLUGINS, "host-local"));

/** Builds the plugin binary when the build has not run (a fresh checkout running one test file). */
export function ensurePluginBuilt(): void {
  if (existsSync(PLUGIN)) return;
  const run = spawnSync(process.execPath, [join(root, "apps", "agent", "scripts", "build-cni.mjs")], { stdio: "inherit" });
  if (run.status !== 0) throw new Error("building the CNI plugin failed");
}

/**
 * Installs the built plugin into `<dir>/bin/flatnet` as a node has it in /opt/cni/bin, and returns its path: the tests
 * run the build's binary, and a rebuild running meanwhile (tsup empties dist/) cannot pull it from under them.
 */
export function installPlugin(dir: string): string {
  ensurePluginBuilt();
  mkdirSync(join(dir, "bin"), { recursive: true });
  const target = join(dir, "bin", "flatnet");
  copyFileSync(PLUGIN, target);
  return target;
}

export function sh(file: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(file, args, { encoding: "utf8" });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Creates network namespaces (names must carry the test prefix fn-tc-) and returns a cleanup that removes them by name. */
export function createNamespaces(names: string[]): () => void {
  for (const name of names) {
    if (!name.startsWith("fn-tc-")) throw new Error(`test namespace ${name} must start with fn-tc-`);
    sh("ip", ["netns", "del", name]);
    const r = sh("ip", ["netns", "add", name]);
    if (r.status !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
    sh("ip", ["-n", name, "link", "set", "lo", "up"]);
  }
  return () => {
    for (const name of names) sh("ip", ["netns", "del", name]);
  };
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface PluginRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

/** Execs a plugin binary as a runtime would: the given CNI_* env (and nothing implicit), config on stdin. */
export function runPlugin(env: Record<string, string | undefined>, stdin: string, binary: string): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const clean: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
    const child = spawn(binary, [], { env: clean, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() === "" ? undefined : (JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        json = undefined;
      }
      resolve({ code, signal, stdout, stderr, json });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
  });
}

/** Global addresses of an interface in a namespace ("10.244.1.5/24"). */
export function addressesOf(netns: string, ifName: string): string[] {
  const r = sh("ip", ["-n", netns, "-json", "addr", "show", "dev", ifName]);
  if (r.status !== 0) return [];
  const links = JSON.parse(r.stdout) as { addr_info?: { local: string; prefixlen: number; scope: string }[] }[];
  return (links[0]?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`);
}

/** Names of links in a namespace that start with `prefix`. */
export function linksOf(netns: string, prefix = ""): string[] {
  const r = sh("ip", ["-n", netns, "-json", "link", "show"]);
  if (r.status !== 0) return [];
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith(prefix));
}
