import { describe, expect, it } from "vitest";
import { buildProbeReport, DEFAULT_PROBE_OPTIONS, type PairResult, type ProbePair, type ProbeReport } from "@flatnet/core";
import { ProbeMetrics, RTT_BUCKETS } from "./metrics.ts";

function pair(src: string, dst: string): ProbePair {
  return {
    id: `${src}>${dst}/IPv4`,
    src: { pod: `pod-${src}`, node: src, ip: "10.244.1.2", port: 7471 },
    dst: { pod: `pod-${dst}`, node: dst, ip: "10.244.2.2", port: 7471 },
    family: "IPv4",
    path: src === dst ? "same-node" : "cross-node",
  };
}

function report(results: PairResult[]): ProbeReport {
  return buildProbeReport({
    runId: "r",
    cluster: { name: "t", source: "fixture" },
    startedAt: new Date(0),
    finishedAt: new Date(250),
    options: DEFAULT_PROBE_OPTIONS,
    plan: { mode: "all-pods", families: ["IPv4"], pairs: results.map((r) => r.pair), excluded: [] },
    results,
  });
}

const ok = (p: ProbePair, p50 = 0.08): PairResult => ({ pair: p, verdict: "ok", attempts: 1, problems: [], nat: { verdict: "nat-free", expectedSrc: p.src.ip }, rtt: { samples: 4, p50Ms: p50, p99Ms: p50 * 2 }, udpLossRatio: 0, diagnosis: [] });
const nat = (p: ProbePair): PairResult => ({ ...ok(p), verdict: "failed", problems: ["nat-violation"], nat: { verdict: "snat-to-node-ip", observedSrc: "172.31.0.11", expectedSrc: p.src.ip } });

async function series(metrics: ProbeMetrics, name: string): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split("\n").filter((l) => l.startsWith(name) && !l.startsWith("#")).sort();
}

describe("ProbeMetrics", () => {
  it("has sub-millisecond RTT buckets", () => {
    expect(RTT_BUCKETS.filter((b) => b < 0.001)).toEqual([0.00005, 0.0001, 0.00025, 0.0005, 0.00075]);
  });

  it("labels by node pair and counts verdicts and NAT violations", async () => {
    const m = new ProbeMetrics();
    m.record(report([ok(pair("n1", "n2")), nat(pair("n1", "n3"))]));
    expect(await series(m, "flatnet_probe_nat_violations")).toEqual([
      'flatnet_probe_nat_violations{src_node="n1",dst_node="n2",family="IPv4",path="cross-node"} 0',
      'flatnet_probe_nat_violations{src_node="n1",dst_node="n3",family="IPv4",path="cross-node"} 1',
    ]);
    expect(await series(m, 'flatnet_probe_pairs{src_node="n1",dst_node="n3",family="IPv4",path="cross-node",verdict="failed"}')).toEqual([
      'flatnet_probe_pairs{src_node="n1",dst_node="n3",family="IPv4",path="cross-node",verdict="failed"} 1',
    ]);
    // 0.08 ms lands in the 0.1 ms bucket, not only in a 5 ms one.
    expect(await series(m, 'flatnet_probe_rtt_seconds_bucket{le="0.0001",src_node="n1",dst_node="n2"')).toEqual([
      'flatnet_probe_rtt_seconds_bucket{le="0.0001",src_node="n1",dst_node="n2",family="IPv4",path="cross-node"} 1',
    ]);
    expect(await series(m, "flatnet_probe_runs_total")).toEqual(['flatnet_probe_runs_total{result="fail"} 1']);
  });

  it("prunes every series of a node that left", async () => {
    const m = new ProbeMetrics();
    m.record(report([ok(pair("n1", "n2")), ok(pair("n1", "n3")), ok(pair("n3", "n1"))]));
    m.record(report([ok(pair("n1", "n2"))]));
    const text = await m.registry.metrics();
    expect(text).not.toContain('"n3"');
    expect(await series(m, "flatnet_probe_nat_violations")).toEqual([
      'flatnet_probe_nat_violations{src_node="n1",dst_node="n2",family="IPv4",path="cross-node"} 0',
    ]);
    expect(await series(m, "flatnet_probe_runs_total")).toEqual(['flatnet_probe_runs_total{result="pass"} 2']);
  });
});
