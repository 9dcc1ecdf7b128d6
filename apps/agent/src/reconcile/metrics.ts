import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { type Reconciler, SYNC_ERROR_KINDS, type SyncOutcome } from "./loop.ts";

/**
 * The loop's metrics in `registry`: syncs, errors by kind, last sync duration, sync and per-peer convergence
 * histograms, peers and skipped peers. Returns the `onSync` hook to pass to the Reconciler.
 */
export function registerReconcileMetrics(registry: Registry, loop: () => Reconciler | undefined): (outcome: SyncOutcome) => void {
  const registers = [registry];
  const syncs = new Counter({ name: "flatnet_syncs_total", help: "Reconcile syncs run, successful or not.", registers });
  const errors = new Counter({ name: "flatnet_sync_errors_total", help: "Failed syncs by the stage that failed.", labelNames: ["kind"], registers });
  for (const kind of SYNC_ERROR_KINDS) errors.inc({ kind }, 0);
  const last = new Gauge({ name: "flatnet_last_sync_duration_seconds", help: "Duration of the last sync.", registers });
  const duration = new Histogram({
    name: "flatnet_sync_duration_seconds",
    help: "Sync duration: snapshot, compute, kernel read, diff and apply.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const convergence = new Histogram({
    name: "flatnet_peer_convergence_seconds",
    help: "Time from a peer first appearing in the snapshot to its routes being applied on this node.",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  // Gauges of the loop's state, read at scrape time.
  const scraped = (name: string, help: string, value: () => number) => new Gauge({ name, help, registers, collect() { this.set(value()); } });
  scraped("flatnet_peers", "Peers this node programs routes for.", () => {
    const desired = loop()?.current.desired;
    return desired === undefined ? 0 : new Set(desired.peers.map((p) => p.node)).size;
  });
  scraped("flatnet_skipped_peers", "Peers (or peer families) left out for missing or invalid data.", () => loop()?.current.skipped.length ?? 0);
  scraped("flatnet_ready", "1 after the first successful sync.", () => (loop()?.synced ? 1 : 0));
  return (outcome) => {
    syncs.inc();
    last.set(outcome.durationMs / 1000);
    duration.observe(outcome.durationMs / 1000);
    if (!outcome.ok) errors.inc({ kind: outcome.kind });
    else for (const { ms } of outcome.converged) convergence.observe(ms / 1000);
  };
}
