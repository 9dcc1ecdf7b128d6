import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cniWorkerSocket } from "./delegate.ts";
import { defaultPluginBinary } from "./runtime.ts";

// The agent's CNI worker: the plugin binary (Bun) started by the agent in serve mode (FLATNET_CNI_SERVE), listening on
// <api socket>-cni.sock, restarted when it exits. Why a separate process and not the agent's own /v1/cni route: an
// `ip` process started from the agent's ~150 MB Node heap costs ~3 ms of fork alone (0.3 ms from Bun), and an ADD
// starts two; measured figures in docs/cni.md. The worker runs the same code as the plugin, on the same database.

export interface WorkerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface CniWorker {
  readonly socketPath: string;
  /** The running worker's pid (undefined between restarts). */
  pid(): number | undefined;
  stop(): Promise<void>;
}

export interface CniWorkerOptions {
  /** The agent's API socket; the worker listens next to it (cniWorkerSocket). */
  apiSocket: string;
  /** The plugin binary; default: the build's dist/cni/flatnet (FLATNET_CNI_BINARY overrides). */
  binary?: string;
  logger: WorkerLogger;
  /** Delay before a restart after the worker exits. Default 500 ms, doubling to 10 s while it keeps failing fast. */
  restartDelayMs?: number;
}

/** Starts the CNI worker, or returns undefined (logged) when the plugin binary is not built: the plugin then works alone. */
export function startCniWorker(options: CniWorkerOptions): CniWorker | undefined {
  const socketPath = cniWorkerSocket(options.apiSocket);
  let binary = options.binary ?? process.env.FLATNET_CNI_BINARY;
  try {
    binary ??= defaultPluginBinary();
  } catch {
    binary = undefined;
  }
  if (binary === undefined || !existsSync(binary)) {
    options.logger.warn({ binary }, "CNI plugin binary not found; no CNI worker (the plugin does its work in-process)");
    return undefined;
  }
  let child: ChildProcess | undefined;
  let stopping = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let delay = options.restartDelayMs ?? 500;
  const launch = () => {
    const started = Date.now();
    const proc = spawn(binary, [], {
      env: { ...process.env, FLATNET_CNI_SERVE: socketPath, FLATNET_CNI_PARENT: String(process.pid) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    child = proc;
    options.logger.info({ pid: proc.pid, socket: socketPath }, "CNI worker started");
    proc.on("error", (error) => options.logger.warn({ err: error.message }, "CNI worker failed to start"));
    // "close", not "exit": a spawn that fails (binary missing or not executable for a moment) emits "error" and "close"
    // but never "exit", and must be retried like a worker that died. Without pipes, "close" follows "exit" at once.
    proc.on("close", (code, signal) => {
      child = undefined;
      if (stopping) return;
      delay = Date.now() - started > 10_000 ? (options.restartDelayMs ?? 500) : Math.min(delay * 2, 10_000);
      options.logger.warn({ code, signal, restartInMs: delay }, "CNI worker exited; restarting");
      timer = setTimeout(launch, delay);
    });
  };
  launch();
  return {
    socketPath,
    pid: () => child?.pid,
    stop: async () => {
      stopping = true;
      if (timer !== undefined) clearTimeout(timer);
      const proc = child;
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
      });
    },
  };
}
