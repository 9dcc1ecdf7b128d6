import { statSync } from "node:fs";
import { IpamStore } from "../ipam-store/store.ts";
import type { DelegatedResponse, NetnsIdentity } from "./delegate.ts";
import { realDeps } from "./deps.ts";
import type { PluginDeps, PodOps } from "./invocation.ts";
import { handleCni } from "./plugin.ts";

// The agent's side of the plugin's fast path (delegate.ts): the same handleCni the plugin process runs, kept warm in
// the agent. Modules are loaded once and each IPAM database is opened once and kept open; the database stays the one
// source of truth, shared with plugin processes that run the call themselves while the agent is away (SQLite's write
// lock serialises both, exactly as between two plugin processes).

export interface CniService {
  /** Runs one CNI call ({CNI_* env, stdin}) as the plugin binary would; the answer is what it would print and exit with. */
  handle(env: Record<string, string>, stdin: string): Promise<DelegatedResponse>;
  /** Closes the IPAM databases the service holds open. */
  close(): void;
}

/**
 * The agent's CNI service; `pods` replaces kernel operations (the worker's rtnetlink ADD, linux/netlink.ts).
 * `processEnv` is the agent's own environment: FLATNET_CNI_TRACE and the test-only
 * FLATNET_CNI_CRASH_AT are honoured from there, never from a request (a caller cannot make the agent kill itself).
 */
export function createCniService(processEnv: Record<string, string | undefined> = process.env, pods: Partial<PodOps> = {}): CniService {
  const open = new Map<string, { store: IpamStore; ino: number }>();
  const base = realDeps({ FLATNET_CNI_TRACE: processEnv.FLATNET_CNI_TRACE, FLATNET_CNI_CRASH_AT: processEnv.FLATNET_CNI_CRASH_AT });
  const openShared = (path: string): IpamStore => {
    const held = open.get(path);
    // A database removed or replaced since (by an operator after damage, a test's directory deleted) is opened again.
    const ino = inode(path);
    if (held !== undefined && held.ino === ino) return keepOpen(held.store);
    if (held !== undefined) closeQuietly(held.store);
    const store = IpamStore.open(path, { synchronous: "OFF" });
    open.set(path, { store, ino: inode(path) });
    return keepOpen(store);
  };
  const deps: PluginDeps = { ...base, pods: { ...base.pods, ...pods }, openStore: openShared };
  return {
    handle: (env, stdin) => handleCni(env, stdin, deps),
    close: () => {
      for (const { store } of open.values()) closeQuietly(store);
      open.clear();
    },
  };
}

/** One CNI call as the fast path sends it: CNI_* env, stdin, and CNI_NETNS's identity as the runtime's side sees it. */
export interface CniCall {
  env: Record<string, string>;
  stdin: string;
  netns?: NetnsIdentity;
}

/** A CNI call as the fast path sends it ({env: CNI_* only, stdin, netns?}); throws a message naming what is wrong. */
export function parseCniCall(body: unknown): CniCall {
  const call = body as { env?: unknown; stdin?: unknown; netns?: unknown } | null | undefined;
  const env = call?.env;
  if (typeof env !== "object" || env === null || Array.isArray(env) || typeof call?.stdin !== "string") {
    throw new Error('the body must be {"env": {"CNI_COMMAND": ..., ...}, "stdin": "<network configuration>"}');
  }
  const cniEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env as Record<string, unknown>)) {
    if (!key.startsWith("CNI_") || typeof value !== "string") {
      throw new Error(`env.${key} is not accepted: only CNI_* variables with string values travel to the agent`);
    }
    cniEnv[key] = value;
  }
  if (call.netns === undefined) return { env: cniEnv, stdin: call.stdin };
  const netns = call.netns as { dev?: unknown; ino?: unknown } | null;
  if (typeof netns !== "object" || netns === null || !Number.isSafeInteger(netns.dev) || !Number.isSafeInteger(netns.ino)) {
    throw new Error(`netns ${JSON.stringify(call.netns)} is not accepted: it must be {"dev": <integer>, "ino": <integer>} (stat of CNI_NETNS)`);
  }
  return { env: cniEnv, stdin: call.stdin, netns: { dev: netns.dev as number, ino: netns.ino as number } };
}

// The commands that act inside CNI_NETNS (DEL finds the pod by its host veth in the node namespace).
const ACTS_IN_NETNS = new Set(["ADD", "CHECK"]);

/**
 * Why this process must not run the call, or undefined: the call acts in CNI_NETNS and that path is not, here, the
 * namespace the runtime's side stat()ed (the runtime is in another mount namespace, where it bind-mounted the netns,
 * or another PID namespace, where /proc/PID is another process). The client then runs the call itself (issue 11).
 */
export function netnsDeclined(call: CniCall): string | undefined {
  const path = call.env.CNI_NETNS;
  if (!ACTS_IN_NETNS.has(call.env.CNI_COMMAND ?? "") || path === undefined || path === "") return undefined;
  if (call.netns === undefined) return `no identity of CNI_NETNS ${JSON.stringify(path)} was sent; the worker acts only in a namespace it verified`;
  let here: { dev: number; ino: number };
  try {
    here = statSync(path);
  } catch (error) {
    return `CNI_NETNS ${JSON.stringify(path)} cannot be read where the worker runs (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  if (here.dev !== call.netns.dev || here.ino !== call.netns.ino) {
    return `CNI_NETNS ${JSON.stringify(path)} is ${here.dev}:${here.ino} where the worker runs, ${call.netns.dev}:${call.netns.ino} for the runtime (another mount or PID namespace)`;
  }
  return undefined;
}

function inode(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return -1;
  }
}

/** The shared store with close() a no-op: the commands close what they open; the service keeps it open. */
function keepOpen(store: IpamStore): IpamStore {
  return Object.assign(Object.create(store) as IpamStore, { close: () => {} });
}

function closeQuietly(store: IpamStore): void {
  try {
    store.close();
  } catch {
    // already closed or its file gone: nothing to release
  }
}
