import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Etcd3 } from "etcd3";
import { waitUntil } from "./wait-until.ts";

const run = promisify(execFile);

export interface StartEtcdOptions {
  /** Address to listen on; default 127.0.0.1. Inside a netns, an address of that namespace. */
  host?: string;
  /** Client port; default a free port (only meaningful in the current namespace). */
  clientPort?: number;
  peerPort?: number;
  /** Data directory; default a fresh temp dir, removed by stop() unless keepData. */
  dataDir?: string;
  /** Run etcd inside this network namespace (ip netns exec). */
  netns?: string;
  /** File to append etcd's log to; default discarded. */
  logFile?: string;
  binary?: string;
  /** How long to wait for the first healthy answer; default 20 s. */
  readyTimeoutMs?: number;
}

export interface RunningEtcd {
  readonly endpoint: string;
  readonly dataDir: string;
  pid(): number;
  /** SIGKILL-free stop: SIGTERM by PID, wait for exit; removes a temp data dir. */
  stop(): Promise<void>;
  /** Stops the process and keeps the data, so restart() comes back with the same keys. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** A free TCP port on host, found by binding port 0 (the port is released before etcd binds it). */
export async function findFreePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Starts a single-member etcd (Debian's etcd-server, /usr/bin/etcd) and waits until it answers.
 * The process is ours alone: stop() and kill() signal it by PID.
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<RunningEtcd> {
  const host = options.host ?? "127.0.0.1";
  const clientPort = options.clientPort ?? (await findFreePort(host));
  const peerPort = options.peerPort ?? (await findFreePort(host));
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "flatnet-etcd-")));
  await mkdir(dataDir, { recursive: true });
  const hostUrl = host.includes(":") ? `[${host}]` : host;
  const endpoint = `http://${hostUrl}:${clientPort}`;
  const peer = `http://${hostUrl}:${peerPort}`;
  const args = [
    "--name", "flatnet", "--data-dir", join(dataDir, "member"),
    "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `flatnet=${peer}`, "--initial-cluster-state", "new",
    "--log-level", "warn", "--logger", "zap",
  ];
  const binary = options.binary ?? "/usr/bin/etcd";
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const { openSync, closeSync } = await import("node:fs");
    const logFd = options.logFile ? openSync(options.logFile, "a") : "ignore";
    const [cmd, argv] = options.netns ? ["ip", ["netns", "exec", options.netns, binary, ...args]] : [binary, args];
    const proc = spawn(cmd, argv as string[], { stdio: ["ignore", logFd, logFd] });
    if (typeof logFd === "number") closeSync(logFd);
    child = proc;
    exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    const spawnError = new Promise<never>((_, reject) => proc.once("error", reject));
    const early = exited.then(() => {
      throw new Error(`etcd (${binary}) exited before becoming ready on ${endpoint}`);
    });
    await Promise.race([waitHealthy(endpoint, options.readyTimeoutMs ?? 20_000, options.netns), spawnError, early]);
  };
  const terminate = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    await exited;
  };

  await launch();
  return {
    endpoint,
    dataDir,
    pid: () => child?.pid ?? -1,
    kill: terminate,
    restart: async () => {
      await terminate();
      await launch();
    },
    stop: async () => {
      await terminate();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function waitHealthy(endpoint: string, timeoutMs: number, netns: string | undefined): Promise<void> {
  const every = { timeoutMs, intervalMs: 100, maxIntervalMs: 100 };
  // Inside a netns the root namespace may not reach the address: poll with etcdctl run in that namespace.
  if (netns) {
    const health = ["netns", "exec", netns, "etcdctl", `--endpoints=${endpoint}`, "endpoint", "health"];
    await waitUntil(`etcd at ${endpoint} in netns ${netns} to be healthy`, () => run("ip", health).then(() => true), every);
    return;
  }
  const client = new Etcd3({ hosts: endpoint, dialTimeout: 1000 });
  try {
    await waitUntil(`etcd at ${endpoint} to be healthy`, () => client.maintenance.status(), every);
  } finally {
    client.close();
  }
}
