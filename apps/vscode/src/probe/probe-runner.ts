/**
 * Runs one verification: spawns `flatnet check --ndjson` (NDJSON probe events on stdout) or replays a
 * recorded NDJSON file, and hands validated events to the caller as they arrive.
 */
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import type { ProbeEvent } from "@flatnet/core";
import { NdjsonSplitter } from "./ndjson.ts";

export interface ProbeRun {
  /** Resolves when the run ended; always with a terminal event seen or synthesised. */
  done: Promise<void>;
  cancel(): void;
}

export interface RunCallbacks {
  onEvents(events: ProbeEvent[]): void;
  /** A line that is not a valid event; the run goes on. */
  onWarning(message: string): void;
}

/** The `run-failed` event a run ends with when the engine could not say so itself. */
export function runFailed(runId: string, code: string, message: string): ProbeEvent {
  return { v: 1, type: "run-failed", runId, error: { code, message } };
}

/** Batches events per macrotask so a burst of lines becomes one webview message. */
function batcher(onEvents: (events: ProbeEvent[]) => void) {
  let batch: ProbeEvent[] = [];
  let scheduled = false;
  const emit = () => {
    const out = batch;
    batch = [];
    onEvents(out);
  };
  return {
    push(event: ProbeEvent) {
      batch.push(event);
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        emit();
      });
    },
    flush() {
      if (batch.length > 0) emit();
    },
  };
}

/** The NDJSON reader of both runs: events batched out, bad lines to `onBadLine`, and what the stream said so far. */
function eventReader(onEvents: (events: ProbeEvent[]) => void, onBadLine: (message: string) => void) {
  const out = batcher(onEvents);
  const seen = { runId: "unknown", terminal: false };
  const splitter = new NdjsonSplitter((outcome) => {
    if (!outcome.ok) return onBadLine(outcome.message);
    if (outcome.event.type === "run-started") seen.runId = outcome.event.runId;
    if (outcome.event.type === "run-finished" || outcome.event.type === "run-failed") seen.terminal = true;
    out.push(outcome.event);
  });
  return { out, splitter, seen };
}

/**
 * Spawns the probe command; its stdout is NDJSON probe events. A run that ends without a terminal event gets a
 * `run-failed` naming the command and its last stderr line.
 */
export function spawnProbeRun(command: readonly string[], env: NodeJS.ProcessEnv, callbacks: RunCallbacks): ProbeRun {
  const [file, ...args] = command;
  if (!file) throw new Error("probe command must not be empty");
  const warnings: string[] = [];
  const { out, splitter, seen } = eventReader(callbacks.onEvents, (message) => void warnings.push(message));
  const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let cancelled = false;
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => splitter.push(chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const done = new Promise<void>((resolve) => {
    const finish = (code: number | null, error?: Error) => {
      splitter.end();
      out.flush();
      for (const warning of warnings.slice(0, 5)) callbacks.onWarning(warning);
      if (!seen.terminal && cancelled) callbacks.onEvents([runFailed(seen.runId, "ERR_PROBE_CANCELLED", `cancelled: ${command.join(" ")} was stopped`)]);
      else if (!seen.terminal) {
        const detail = error ? error.message : stderr.trim().split("\n").at(-1) || (warnings[0] ?? `exited with code ${code} without a probe report`);
        callbacks.onEvents([runFailed(seen.runId, error ? "ERR_PROBE_SPAWN" : "ERR_PROBE_EXIT", `${command.join(" ")}: ${detail}`)]);
      }
      resolve();
    };
    child.on("error", (error) => finish(null, error));
    child.on("close", (code) => finish(code));
  });
  return {
    done,
    cancel: () => {
      cancelled = true;
      child.kill("SIGTERM");
    },
  };
}

/** Replays a recorded run (NDJSON of ProbeEvents) as if it were streaming. */
export function replayProbeRun(path: string, callbacks: RunCallbacks): ProbeRun {
  const { out, splitter, seen } = eventReader(callbacks.onEvents, (message) => callbacks.onWarning(message));
  let cancelled = false;
  const stream = createReadStream(path, { encoding: "utf8", highWaterMark: 16 * 1024 });
  const done = new Promise<void>((resolve) => {
    stream.on("data", (chunk) => !cancelled && splitter.push(String(chunk)));
    stream.on("error", (error) => {
      out.flush();
      callbacks.onEvents([runFailed("replay", "ERR_PROBE_REPLAY", `recorded run "${path}" cannot be read: ${error.message}`)]);
      resolve();
    });
    stream.on("end", () => {
      splitter.end();
      out.flush();
      if (!seen.terminal && !cancelled) callbacks.onEvents([runFailed("replay", "ERR_PROBE_REPLAY", `recorded run "${path}" ends without run-finished`)]);
      resolve();
    });
  });
  return {
    done,
    cancel: () => {
      cancelled = true;
      stream.destroy();
    },
  };
}
