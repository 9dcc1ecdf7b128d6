import {
  type ClusterSnapshot,
  type DesiredNetwork,
  type KernelState,
  type NetworkOptions,
  type Plan,
  type SkippedPeer,
  computeNodeNetwork,
  diffNetwork,
} from "@flatnet/core";
import type { HostSetup, Kernel } from "../linux/kernel.ts";
import { type BackoffOptions, backoffDelay } from "./backoff.ts";
import { hostSetupFor } from "./host-setup.ts";

/** Where a sync failed; metrics count errors by this. */
export const SYNC_ERROR_KINDS = ["datastore", "compute", "host", "kernel-read", "kernel-apply"] as const;
export type SyncErrorKind = (typeof SYNC_ERROR_KINDS)[number];

export interface ReconcilerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface ReconcilerOptions {
  node: string;
  /** The datastore (or anything that yields a cluster snapshot). */
  source: { snapshot(): Promise<ClusterSnapshot> };
  kernel: Kernel;
  /** This node's network options; a function when they can change between syncs (underlay re-detected). */
  networkOptions: NetworkOptions | (() => NetworkOptions);
  /** Periodic resync that repairs drift. Default 10 s. */
  resyncIntervalMs?: number;
  backoff?: BackoffOptions;
  /** Masquerade off-cluster egress (nft table inet flatnet). Default true. */
  masquerade?: boolean;
  logger?: ReconcilerLogger;
  /** Monotonic milliseconds. */
  now?: () => number;
  /** Called after every sync (metrics). */
  onSync?: (outcome: SyncOutcome) => void;
}

export type SyncOutcome =
  | { ok: true; durationMs: number; steps: number; converged: { peer: string; ms: number }[] }
  | { ok: false; durationMs: number; kind: SyncErrorKind; error: Error; retryInMs: number };

export interface ReconcileStats {
  syncs: number;
  /** Successful syncs. */
  successes: number;
  errors: Record<SyncErrorKind, number>;
  consecutiveFailures: number;
  lastSyncDurationMs: number | undefined;
  lastSyncAt: number | undefined;
  lastError: { kind: SyncErrorKind; message: string; at: number } | undefined;
  /** Per peer: ms from first appearing in the snapshot to its routes being applied. */
  convergenceMs: Record<string, number>;
}

export interface ReconcileState {
  desired: DesiredNetwork | undefined;
  /** The kernel as read before the last apply. */
  actual: KernelState | undefined;
  lastPlan: Plan | undefined;
  skipped: SkippedPeer[];
  stats: ReconcileStats;
}

class SyncError extends Error {
  constructor(
    readonly kind: SyncErrorKind,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "SyncError";
  }
}

/**
 * The level-triggered, coalesced reconcile loop: any number of triggers while a sync runs cause exactly one more
 * sync (snapshot -> computeNodeNetwork -> kernel.read -> diffNetwork -> kernel.apply). A timer resyncs anyway to
 * repair drift; failures back off exponentially and retry. Nothing is removed from the kernel on stop.
 */
export class Reconciler {
  private readonly resyncIntervalMs: number;
  private readonly now: () => number;
  private running = false;
  private stopped = true;
  private dirty = false;
  private dirtySince: number | undefined;
  private reasons = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerKind: "resync" | "retry" | undefined;
  private idle: Promise<void> = Promise.resolve();
  private lastHostSetup: string | undefined;
  private readonly firstSeen = new Map<string, number>();
  private readonly syncedWaiters: (() => void)[] = [];
  private readonly state: ReconcileState = {
    desired: undefined,
    actual: undefined,
    lastPlan: undefined,
    skipped: [],
    stats: {
      syncs: 0,
      successes: 0,
      errors: Object.fromEntries(SYNC_ERROR_KINDS.map((kind) => [kind, 0])) as Record<SyncErrorKind, number>,
      consecutiveFailures: 0,
      lastSyncDurationMs: undefined,
      lastSyncAt: undefined,
      lastError: undefined,
      convergenceMs: {},
    },
  };

  constructor(private readonly options: ReconcilerOptions) {
    this.resyncIntervalMs = options.resyncIntervalMs ?? 10_000;
    if (!Number.isFinite(this.resyncIntervalMs) || this.resyncIntervalMs <= 0) {
      throw new Error(`resync interval ${this.resyncIntervalMs} ms must be a positive number`);
    }
    this.now = options.now ?? (() => performance.now());
  }

  /** Starts the loop with a first sync. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.trigger("start");
  }

  /** Stops timers, waits for a running sync to end and closes the kernel adapter; the kernel keeps everything programmed. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    await this.idle;
    await this.options.kernel.close?.();
  }

  /** Asks for a sync; triggers while one runs coalesce into one more. */
  trigger(reason: string): void {
    if (this.stopped) return;
    this.reasons.add(reason);
    this.dirty = true;
    this.dirtySince ??= this.now(); // set whenever dirty is: the first trigger's time stays
    // While backing off, the retry timer runs the coalesced sync; hammering a failing kernel helps nobody.
    if (this.running || this.timerKind === "retry") return;
    this.clearTimer();
    this.running = true;
    this.idle = this.run();
  }

  /** Resolves after the next successful sync (immediately if one already happened). */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  get synced(): boolean {
    return this.state.stats.successes > 0;
  }

  /** The pod MTU of the last computed network (read without copying the state); undefined before the first compute. */
  get podMtu(): number | undefined {
    return this.state.desired?.podMtu;
  }

  /** The live state, to read within the same tick (metrics, readiness): never kept or changed by the caller. */
  get current(): Readonly<ReconcileState> {
    return this.state;
  }

  /** Desired, actual, last plan, skipped peers and stats (a copy). */
  snapshotState(): ReconcileState {
    return structuredClone(this.state);
  }

  private async run(): Promise<void> {
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        const since = this.dirtySince ?? this.now();
        this.dirtySince = undefined;
        const reasons = [...this.reasons];
        this.reasons.clear();
        const again = await this.syncOnce(since, reasons);
        if (again && !this.dirty) {
          // The device was (re)created or changed: the kernel may have dropped objects the plan assumed kept.
          this.dirty = true;
          this.dirtySince = this.now();
          this.reasons.add("device-changed");
        }
        if (this.timerKind === "retry") break;
      }
    } finally {
      this.running = false;
    }
  }

  /** One sync; returns whether another should follow at once. */
  private async syncOnce(since: number, reasons: string[]): Promise<boolean> {
    const start = this.now();
    const stats = this.state.stats;
    stats.syncs++;
    try {
      const cluster = await this.stage("datastore", () => this.options.source.snapshot());
      const options = typeof this.options.networkOptions === "function" ? this.options.networkOptions() : this.options.networkOptions;
      const computed = computeNodeNetwork(cluster, this.options.node, options);
      if (!computed.success) throw new SyncError("compute", new Error(`${computed.error.code}: ${computed.error.message}`));
      const desired = computed.data;
      this.notePeers(cluster, since);

      const setup = hostSetupFor(cluster, desired, this.options.masquerade ?? true);
      const setupKey = JSON.stringify(setup);
      if (this.options.kernel.ensureHost && (setupKey !== this.lastHostSetup || reasons.includes("resync") || reasons.includes("start"))) {
        await this.stage("host", () => this.options.kernel.ensureHost!(setup as HostSetup));
        this.lastHostSetup = setupKey;
      }

      const actual = await this.stage("kernel-read", () => this.options.kernel.read());
      const plan = diffNetwork(desired, actual);
      this.state.desired = desired;
      this.state.actual = actual;
      this.state.skipped = desired.skipped;
      this.state.lastPlan = plan;
      if (plan.steps.length > 0) await this.stage("kernel-apply", () => this.options.kernel.apply(plan));

      const durationMs = this.now() - start;
      const converged = this.noteConverged(desired);
      stats.successes++;
      stats.consecutiveFailures = 0;
      stats.lastSyncDurationMs = durationMs;
      stats.lastSyncAt = Date.now();
      if (plan.steps.length > 0) {
        this.options.logger?.info({ steps: plan.steps.length, durationMs: round(durationMs), reasons }, "applied plan");
      } else {
        this.options.logger?.debug({ durationMs: round(durationMs), reasons }, "in sync");
      }
      this.options.onSync?.({ ok: true, durationMs, steps: plan.steps.length, converged });
      for (const resolve of this.syncedWaiters.splice(0)) resolve();
      this.schedule("resync", this.resyncIntervalMs);
      return plan.steps.some((step) => step.kind === "vxlan-device");
    } catch (error) {
      const failure = error instanceof SyncError ? error : new SyncError("compute", error);
      const durationMs = this.now() - start;
      stats.errors[failure.kind]++;
      stats.consecutiveFailures++;
      stats.lastSyncDurationMs = durationMs;
      stats.lastError = { kind: failure.kind, message: failure.message, at: Date.now() };
      const retryInMs = backoffDelay(stats.consecutiveFailures, this.options.backoff);
      this.options.logger?.warn({ kind: failure.kind, err: failure.message, retryInMs, failures: stats.consecutiveFailures }, "sync failed");
      this.options.onSync?.({ ok: false, durationMs, kind: failure.kind, error: failure, retryInMs });
      // The failed sync's trigger time stays: convergence counts the time spent retrying.
      this.dirtySince = Math.min(this.dirtySince ?? since, since);
      this.schedule("retry", retryInMs);
      return false;
    }
  }

  private async stage<T>(kind: SyncErrorKind, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw new SyncError(kind, error);
    }
  }

  private notePeers(cluster: ClusterSnapshot, since: number): void {
    const present = new Set(cluster.nodes.map((node) => node.name));
    for (const name of present) if (name !== this.options.node && !this.firstSeen.has(name)) this.firstSeen.set(name, since);
    for (const name of this.firstSeen.keys()) {
      if (!present.has(name)) {
        this.firstSeen.delete(name);
        delete this.state.stats.convergenceMs[name];
      }
    }
  }

  private noteConverged(desired: DesiredNetwork): { peer: string; ms: number }[] {
    const converged: { peer: string; ms: number }[] = [];
    const skipped = new Set(desired.skipped.filter((s) => s.family === undefined).map((s) => s.node));
    const now = this.now();
    for (const [peer, seen] of this.firstSeen) {
      if (peer in this.state.stats.convergenceMs || skipped.has(peer)) continue;
      const ms = now - seen;
      this.state.stats.convergenceMs[peer] = ms;
      converged.push({ peer, ms });
    }
    return converged;
  }

  private schedule(kind: "resync" | "retry", delayMs: number): void {
    if (this.stopped) return;
    this.clearTimer();
    this.timerKind = kind;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerKind = undefined;
      this.trigger(kind);
    }, delayMs);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerKind = undefined;
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
