import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { connect } from "node:net";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

/** The optional native client (built when a C compiler is there); undefined when it is not built. */
export const NATIVE_CLIENT = join(root, "apps", "agent", "dist", "cni", "flatnet-client");

/** Installs the native client as `<dir>/bin/flatnet` with the Bun binary beside it as flatnet-bun; returns its path. */
export function installNativeClient(dir: string): string {
  ensurePluginBuilt();
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync(PLUGIN, join(dir, "bin", "flatnet-bun"));
  copyFileSync(NATIVE_CLIENT, join(dir, "bin", "flatnet"));
  return join(dir, "bin", "flatnet");
}

export function sh(file: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(file, args, { encoding: "utf8" });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

const TEST_PREFIXES = ["fn-tc-", "fn-tf-", "fn-rt-", "fn-hc-"];

/** Creates network namespaces (names must carry a test prefix, fn-tc- etc.) and returns a cleanup that removes them by name. */
export function createNamespaces(names: string[]): () => void {
  for (const name of names) {
    if (!TEST_PREFIXES.some((prefix) => name.startsWith(prefix))) throw new Error(`test namespace ${name} must start with one of ${TEST_PREFIXES.join(", ")}`);
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

/** The agent bundle `npm run build` produces (dist/main.js); the delegated-mode tests run the real agent. */
export const AGENT_MAIN = join(root, "apps", "agent", "dist", "main.js");

export interface RunningAgent {
  proc: ChildProcess;
  /** The agent's CNI worker socket (the conflist's agentSocket). */
  cniSocket: string;
  apiSocket: string;
  /** Resolves when the agent process has exited. */
  exited: Promise<void>;
  /** What the agent and its worker wrote to stderr so far. */
  log(): string;
}

/** True when something accepts a connection on the unix socket. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Polls `condition` (real state, not time) every 25 ms until it holds; throws naming `what` after `limitMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Gives a node namespace an underlay (a veth `eth0` with `address`, its peer up beside it) so `flatnet agent` can
 * start there. Everything is inside the namespace, which the caller created and removes.
 */
export function addUnderlay(netns: string, address: string): void {
  const lines = ["link add eth0 type veth peer name fnu-peer", `addr add ${address} dev eth0`, "link set eth0 up", "link set fnu-peer up", "link set lo up"];
  const r = spawnSync("ip", ["-n", netns, "-batch", "-"], { input: lines.join("\n") + "\n", encoding: "utf8" });
  if (r.status !== 0) throw new Error(`underlay in ${netns}: ${r.stderr}`);
}

/**
 * Starts the real `flatnet agent` (dist/main.js) inside `netns` with an embedded store under `dir`, its CNI worker
 * running `pluginBinary`; resolves once the worker socket answers. `env` reaches the agent and its worker; `wrap` is a
 * command the agent runs under (e.g. `setpriv --bounding-set ... --`).
 */
export async function startAgent(netns: string, dir: string, pluginBinary: string, env: Record<string, string> = {}, wrap: string[] = []): Promise<RunningAgent> {
  if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is not built; run "npm run build -w @flatnet/agent"`);
  mkdirSync(dir, { recursive: true });
  const netConf = join(dir, "net.json");
  writeFileSync(netConf, JSON.stringify({ clusterCidrs: ["10.87.0.0/16"], backend: "host-gw" }));
  const apiSocket = join(dir, "agent.sock");
  const cniSocket = join(dir, "agent-cni.sock");
  const args = ["netns", "exec", netns, ...wrap, process.execPath, AGENT_MAIN, "agent", "--node", "n1", "--netns", netns, "--datastore", "embedded",
    "--store", join(dir, "store.db"), "--network-config", netConf, "--underlay-device", "eth0", "--socket", apiSocket, "--log-level", "warn"];
  const proc = spawn("ip", args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, FLATNET_CNI_BINARY: pluginBinary, ...env } });
  let log = "";
  proc.stderr?.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  await waitFor(`the agent's CNI worker at ${cniSocket}`, async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the agent exited: ${log}`);
    return (await socketAnswers(cniSocket)) && log.includes("flatnet-cni worker: serving");
  });
  return { proc, cniSocket, apiSocket, exited, log: () => log };
}

/** Stops an agent by its pid (SIGTERM: it stops its worker; SIGKILL: the worker notices and goes) and waits for it. */
export async function stopAgent(agent: RunningAgent, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill(signal);
  await agent.exited;
}

/**
 * Starts the plugin binary as the agent's CNI worker on `socket` (serve mode) and resolves once it answers; `stop`
 * sends SIGTERM to that process by its pid.
 */
export async function startWorker(binary: string, socket: string, env: Record<string, string> = {}): Promise<{ stop(): void }> {
  const worker = spawn(binary, [], { env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env, FLATNET_CNI_SERVE: socket }, stdio: "ignore" });
  await waitFor(`the CNI worker's socket ${socket}`, () => socketAnswers(socket));
  return { stop: () => void (worker.pid !== undefined && process.kill(worker.pid, "SIGTERM")) };
}
