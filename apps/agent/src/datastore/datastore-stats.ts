import type { Datastore } from "./datastore.ts";

// Datastore health as plain counters: the datastores and the factory record here without knowing Prometheus,
// and the metrics module exports them at scrape time.

export type DatastoreOp = "config" | "register" | "heartbeat" | "remove" | "snapshot";

export class DatastoreStats {
  /** Failed calls by operation and error code ("op|code" -> count). */
  readonly errors = new Map<string, number>();
  /** Watch and allocator events by kind (watch-error, watch-restart, relist, allocate, ...). */
  readonly events = new Map<string, number>();
  /** Calls by operation, with their summed duration, for a rate and a mean. */
  readonly calls = new Map<DatastoreOp, { count: number; seconds: number }>();
  /** Unix ms of the last successful call, 0 before the first. */
  lastSuccessMs = 0;

  recordError(op: DatastoreOp | "watch", code: string): void {
    const key = `${op}|${code}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  recordEvent(kind: string): void {
    this.events.set(kind, (this.events.get(kind) ?? 0) + 1);
  }

  recordCall(op: DatastoreOp, seconds: number, ok: boolean, now = Date.now()): void {
    const entry = this.calls.get(op) ?? { count: 0, seconds: 0 };
    entry.count++;
    entry.seconds += seconds;
    this.calls.set(op, entry);
    if (ok) this.lastSuccessMs = now;
  }
}

/** The process-wide stats the agent's datastore records into. */
export const datastoreStats = new DatastoreStats();

/** The same datastore, with every call's outcome and duration recorded in `stats`. */
export function instrumentDatastore(inner: Datastore, stats: DatastoreStats = datastoreStats): Datastore {
  const timed = <A extends unknown[], R>(op: DatastoreOp, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const started = performance.now();
      try {
        const result = await call(...args);
        stats.recordCall(op, (performance.now() - started) / 1000, true);
        return result;
      } catch (error) {
        stats.recordCall(op, (performance.now() - started) / 1000, false);
        stats.recordError(op, errorCode(error));
        throw error;
      }
    };
  return {
    kind: inner.kind,
    config: timed("config", () => inner.config()),
    register: timed("register", (node) => inner.register(node)),
    heartbeat: timed("heartbeat", (name) => inner.heartbeat(name)),
    remove: timed("remove", (name) => inner.remove(name)),
    snapshot: timed("snapshot", () => inner.snapshot()),
    watch: (onChange) => inner.watch(onChange),
    close: () => inner.close(),
  };
}

/** A bounded label value: the error's code, or a coarse class for errors without one. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" && /^[A-Z0-9_]{1,40}$/.test(code)) return code;
  if (typeof code === "number") return `HTTP_${code}`; // client-node ApiException, gRPC status numbers
  const name = (error as { name?: unknown })?.name;
  if (typeof name === "string" && /^[A-Za-z]{1,40}$/.test(name)) return name;
  return "UNKNOWN";
}
