import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PairResult, PairVerdict, ProbeReport } from "@flatnet/core";

// Continuous-mode metrics: labelled by node pair (never pod IP, which churns), with sub-millisecond RTT buckets,
// and every series of a node that left pruned after the next run (Goldpinger #167).

/** RTT buckets in seconds: 50 µs to 1 s, dense below a millisecond where a flat network lives. */
export const RTT_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

type PairLabels = { src_node: string; dst_node: string; family: string; path: string };
const VERDICTS: PairVerdict[] = ["ok", "flaky", "failed", "inconclusive", "excluded"];

export class ProbeMetrics {
  readonly registry: Registry;
  private readonly rtt: Histogram<keyof PairLabels>;
  private readonly pairs: Gauge<keyof PairLabels | "verdict">;
  private readonly nat: Gauge<keyof PairLabels>;
  private readonly mtu: Gauge<keyof PairLabels>;
  private readonly loss: Gauge<keyof PairLabels>;
  private readonly runs: Counter<"result">;
  private readonly lastRun: Gauge;
  private readonly duration: Gauge;
  private readonly seen = new Map<string, PairLabels>();

  constructor(registry = new Registry()) {
    this.registry = registry;
    const labelNames = ["src_node", "dst_node", "family", "path"] as const;
    this.rtt = new Histogram({ name: "flatnet_probe_rtt_seconds", help: "Probe round-trip time per node pair (TCP request and UDP echo samples).", labelNames, buckets: RTT_BUCKETS, registers: [registry] });
    this.pairs = new Gauge({ name: "flatnet_probe_pairs", help: "Pod pairs of the last run per node pair and verdict.", labelNames: [...labelNames, "verdict"], registers: [registry] });
    this.nat = new Gauge({ name: "flatnet_probe_nat_violations", help: "Pod pairs of the last run whose responder saw a source other than the sender's pod IP.", labelNames, registers: [registry] });
    this.mtu = new Gauge({ name: "flatnet_probe_mtu_blackholes", help: "Pod pairs of the last run where a pod-MTU-sized transfer was lost.", labelNames, registers: [registry] });
    this.loss = new Gauge({ name: "flatnet_probe_udp_loss_ratio", help: "UDP echo loss of the last run, averaged over the node pair's pod pairs.", labelNames, registers: [registry] });
    this.runs = new Counter({ name: "flatnet_probe_runs_total", help: "Probe runs by result (pass: no failed or inconclusive pair).", labelNames: ["result"], registers: [registry] });
    this.lastRun = new Gauge({ name: "flatnet_probe_last_run_timestamp_seconds", help: "When the last run finished.", registers: [registry] });
    this.duration = new Gauge({ name: "flatnet_probe_last_run_duration_seconds", help: "How long the last run took.", registers: [registry] });
  }

  /** Record one run: per-node-pair gauges are replaced, RTT samples observed, departed node pairs pruned. */
  record(report: ProbeReport): void {
    const groups = new Map<string, { labels: PairLabels; results: PairResult[] }>();
    for (const r of report.results) {
      const labels: PairLabels = { src_node: r.pair.src.node, dst_node: r.pair.dst.node, family: r.pair.family, path: r.pair.path };
      const key = JSON.stringify(labels);
      const group = groups.get(key) ?? { labels, results: [] };
      group.results.push(r);
      groups.set(key, group);
    }
    for (const [key, labels] of this.seen) {
      if (!groups.has(key)) this.prune(labels);
    }
    this.seen.clear();
    for (const [key, { labels, results }] of groups) {
      this.seen.set(key, labels);
      for (const verdict of VERDICTS) this.pairs.set({ ...labels, verdict }, results.filter((r) => r.verdict === verdict).length);
      this.nat.set(labels, results.filter((r) => r.problems.includes("nat-violation")).length);
      this.mtu.set(labels, results.filter((r) => r.problems.some((p) => p === "mtu-tcp-blackhole" || p === "mtu-udp-blackhole")).length);
      const losses = results.flatMap((r) => (r.udpLossRatio === undefined ? [] : [r.udpLossRatio]));
      if (losses.length > 0) this.loss.set(labels, losses.reduce((a, b) => a + b, 0) / losses.length);
      for (const r of results) {
        // The report keeps p50 and p99 per pair; both are observed so the histogram's tail is not lost.
        if (r.rtt !== undefined) {
          this.rtt.observe(labels, r.rtt.p50Ms / 1000);
          if (r.rtt.samples > 1) this.rtt.observe(labels, r.rtt.p99Ms / 1000);
        }
      }
    }
    const passed = report.summary.failed === 0 && report.summary.inconclusive === 0;
    this.runs.inc({ result: passed ? "pass" : "fail" });
    this.lastRun.set(Date.parse(report.finishedAt) / 1000);
    this.duration.set(report.summary.durationMs / 1000);
  }

  private prune(labels: PairLabels): void {
    this.rtt.remove(labels);
    for (const verdict of VERDICTS) this.pairs.remove({ ...labels, verdict });
    this.nat.remove(labels);
    this.mtu.remove(labels);
    this.loss.remove(labels);
  }
}
