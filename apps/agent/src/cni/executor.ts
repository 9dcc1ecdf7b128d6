import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { negotiateCniVersion } from "./version.ts";

/** A CNI network configuration list (SPEC.md section 1), as a runtime reads it from its conf dir. */
export interface Conflist {
  cniVersion: string;
  /** Versions the list may run at (spec 1.1.0): a runtime picks the highest it implements, see negotiateCniVersion. */
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: PluginConf[];
}
export type PluginConf = { type: string; capabilities?: Record<string, boolean> } & Record<string, unknown>;

/** The per-attachment inputs a runtime passes (libcni's RuntimeConf). */
export interface RuntimeConf {
  containerId: string;
  netns?: string;
  ifName: string;
  /** CNI_ARGS pairs. */
  args?: Record<string, string>;
  /** Capability arguments (e.g. portMappings, bandwidth), passed as runtimeConfig to plugins that declare them. */
  capabilityArgs?: Record<string, unknown>;
}

export interface ExecutorOptions {
  /** Directories searched for plugin binaries (CNI_PATH). */
  binDirs: string[];
  /** Where ADD results are cached for CHECK, DEL and GC (libcni: /var/lib/cni). */
  cacheDir: string;
  /** Run every plugin inside this network namespace (`nsenter --net=/run/netns/NAME`): the lab's node is a namespace. */
  nodeNetns?: string;
  /** Extra environment for the plugins (e.g. test-only crash injection). */
  env?: Record<string, string>;
  /** The highest spec version the emulated runtime's libcni implements (default 1.1.0; "1.0.0" acts as libcni 1.1.x). */
  specVersion?: string;
}

/** A plugin answered with CNI error JSON (or died): the plugin, the command and the spec's code. */
export class CniPluginError extends Error {
  override readonly name = "CniPluginError";
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number,
    readonly msg: string,
    readonly details?: string,
  ) {
    super(`CNI ${command} of plugin ${plugin} failed with code ${code}: ${msg}${details ? ` (${details})` : ""}`);
  }
}

type Command = "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION";
export type ResultJson = Record<string, unknown>;

/** Runs one plugin binary as a runtime does: CNI_* env, config on stdin, result or error JSON on stdout. */
export async function execPlugin(command: Command, conf: Record<string, unknown>, rt: RuntimeConf | undefined, options: ExecutorOptions): Promise<ResultJson | undefined> {
  const type = String(conf.type);
  const binary = findPlugin(type, options.binDirs);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_PATH: options.binDirs.join(":"),
    ...options.env,
  };
  if (rt !== undefined) {
    env.CNI_CONTAINERID = rt.containerId;
    env.CNI_IFNAME = rt.ifName;
    if (rt.netns !== undefined) env.CNI_NETNS = rt.netns;
    const args = Object.entries(rt.args ?? {}).map(([k, v]) => `${k}=${v}`).join(";");
    if (args !== "") env.CNI_ARGS = args;
  }
  const [file, argv] = options.nodeNetns === undefined ? [binary, []] : ["nsenter", [`--net=/run/netns/${options.nodeNetns}`, "--", binary]];
  const { code, stdout, stderr } = await run(file, argv, env, JSON.stringify(conf));
  let parsed: unknown;
  if (stdout.trim() !== "") {
    try {
      parsed = JSON.parse(stdout);
    } catch {
      throw new CniPluginError(type, command, 999, `plugin printed something that is not JSON: ${stdout.slice(0, 200)}`, stderr.trim() || undefined);
    }
  }
  if (code !== 0) {
    const error = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
    if (typeof error?.code === "number") {
      throw new CniPluginError(type, command, error.code, String(error.msg ?? ""), typeof error.details === "string" ? error.details : undefined);
    }
    throw new CniPluginError(type, command, 999, `plugin exited with ${code} without an error result`, stderr.trim() || undefined);
  }
  return parsed as ResultJson | undefined;
}

function findPlugin(type: string, dirs: string[]): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) throw new CniPluginError(type, "exec", 7, `plugin type ${JSON.stringify(type)} is not a file name`);
  for (const dir of dirs) {
    const path = join(dir, type);
    if (existsSync(path)) return path;
  }
  throw new CniPluginError(type, "exec", 7, `plugin ${JSON.stringify(type)} not found in ${JSON.stringify(dirs)}`);
}

function run(file: string, args: string[], env: Record<string, string>, input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

/** The config a plugin of the list receives: the list's name and negotiated cniVersion, runtimeConfig for its capabilities, prevResult. */
export function pluginConfig(list: Conflist, plugin: PluginConf, rt: RuntimeConf | undefined, prevResult: unknown, specVersion?: string): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: negotiateCniVersion(list, specVersion) };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [capability, enabled] of Object.entries(plugin.capabilities ?? {})) {
    if (enabled && rt?.capabilityArgs?.[capability] !== undefined) runtimeConfig[capability] = rt.capabilityArgs[capability];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** A cached ADD result as libcni keeps it (cacheDir/results/NET-CID-IF). */
export interface CachedAttachment {
  kind: "flatnet-cni-cache-v1";
  networkName: string;
  containerId: string;
  ifName: string;
  netns?: string;
  result: ResultJson;
}

function cachePath(cacheDir: string, network: string, containerId: string, ifName: string): string {
  return join(cacheDir, "results", `${network}-${containerId}-${ifName}`);
}

/** The cached ADD result of an attachment (libcni's /var/lib/cni/results/NET-CID-IF), if any. */
export function readCachedResult(list: Conflist, rt: RuntimeConf, options: ExecutorOptions): ResultJson | undefined {
  const path = cachePath(options.cacheDir, list.name, rt.containerId, rt.ifName);
  if (!existsSync(path)) return undefined;
  return (JSON.parse(readFileSync(path, "utf8")) as CachedAttachment).result;
}

/** ADD through the list in order, each plugin getting the previous one's result; caches the final result. */
export async function addNetworkList(list: Conflist, rt: RuntimeConf, options: ExecutorOptions): Promise<ResultJson> {
  let result: ResultJson | undefined;
  for (const plugin of list.plugins) {
    result = await execPlugin("ADD", pluginConfig(list, plugin, rt, result, options.specVersion), rt, options);
  }
  if (result === undefined) throw new CniPluginError(list.name, "ADD", 999, "the plugin list produced no result");
  const path = cachePath(options.cacheDir, list.name, rt.containerId, rt.ifName);
  mkdirSync(join(options.cacheDir, "results"), { recursive: true });
  const cached: CachedAttachment = { kind: "flatnet-cni-cache-v1", networkName: list.name, containerId: rt.containerId, ifName: rt.ifName, result };
  if (rt.netns !== undefined) cached.netns = rt.netns;
  writeFileSync(`${path}.tmp`, JSON.stringify(cached));
  renameSync(`${path}.tmp`, path);
  return result;
}

/** DEL through the list in reverse order with the cached result (if any); the cache goes once every plugin succeeded. */
export async function delNetworkList(list: Conflist, rt: RuntimeConf, options: ExecutorOptions): Promise<void> {
  const cached = readCachedResult(list, rt, options);
  for (const plugin of [...list.plugins].reverse()) await execPlugin("DEL", pluginConfig(list, plugin, rt, cached, options.specVersion), rt, options);
  rmSync(cachePath(options.cacheDir, list.name, rt.containerId, rt.ifName), { force: true });
}
