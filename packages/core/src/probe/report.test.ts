import { describe, expect, it } from "vitest";
import { pair } from "./fixtures.test-util.ts";
import { renderJunit } from "./junit.ts";
import { buildProbeMatrix, worseVerdict } from "./matrix.ts";
import { buildProbeReport, reportPassed, summarizeProbeResults } from "./report.ts";
import { probeEventSchema, probeReportSchema } from "./schema.ts";
import { DEFAULT_PROBE_OPTIONS, type PairResult, type PairVerdict, type ProbeEvent } from "./types.ts";

function result(verdict: PairVerdict, problems: PairResult["problems"] = [], p = pair()): PairResult {
  const r: PairResult = { pair: p, verdict, attempts: verdict === "flaky" ? 2 : 1, problems, nat: { verdict: "nat-free", expectedSrc: p.src.ip }, diagnosis: [] };
  if (verdict === "ok" || verdict === "flaky") r.rtt = { samples: 3, p50Ms: 0.1, p99Ms: 0.4 };
  return r;
}

const p12 = pair();
const p21 = pair("pod-2-0", "node-2", "10.244.2.2", "pod-1-0", "node-1", "10.244.1.2");
const p11 = pair("pod-1-0", "node-1", "10.244.1.2", "pod-1-1", "node-1", "10.244.1.3");

describe("summarizeProbeResults", () => {
  it.each<[string, PairResult[], number, string]>([
    ["empty", [], 0, "0/0 pairs failed (0 NAT violations), 0 excluded"],
    ["all ok", [result("ok"), result("ok")], 0, "0/2 pairs failed (0 NAT violations), 0 excluded"],
    ["one NAT", [result("failed", ["nat-violation"]), result("ok")], 0, "1/2 pairs failed (1 NAT violation), 0 excluded"],
    ["mixed", [result("failed", ["nat-violation"]), result("failed", ["nat-violation", "dnat"]), result("flaky"), result("inconclusive", ["control-path"]), result("excluded")], 2,
      "2/4 pairs failed (2 NAT violations), 1 excluded, 1 flaky, 1 inconclusive, 2 IPAM ledger findings"],
  ])("%s", (_n, results, ledger, line) => {
    expect(summarizeProbeResults(results, ledger, 1).line).toBe(line);
  });
  it("counts MTU failures and passes only without failures, inconclusive pairs or ledger findings", () => {
    const s = summarizeProbeResults([result("failed", ["mtu-tcp-blackhole", "mtu-udp-blackhole"]), result("flaky")], 0, 5);
    expect(s.mtuFailures).toBe(1);
    expect(reportPassed({ summary: s })).toBe(false);
    expect(reportPassed({ summary: summarizeProbeResults([result("flaky"), result("excluded")], 0, 5) })).toBe(true);
    expect(reportPassed({ summary: summarizeProbeResults([result("ok")], 1, 5) })).toBe(false);
    expect(reportPassed({ summary: summarizeProbeResults([result("inconclusive")], 0, 5) })).toBe(false);
  });
});

function report() {
  const plan = { mode: "all-pods" as const, families: ["IPv4" as const], pairs: [p12, p21, p11], excluded: [] };
  return buildProbeReport({
    runId: "run-1",
    cluster: { name: "lab", source: "lab" },
    startedAt: new Date("2026-01-01T00:00:00Z"),
    finishedAt: new Date("2026-01-01T00:00:01.5Z"),
    options: DEFAULT_PROBE_OPTIONS,
    plan,
    results: [
      result("ok", [], p11),
      { ...result("failed", ["tcp-unreachable"], p21), error: "tcp: timeout <5s>", diagnosis: [{ code: "missing-route", node: "node-2", message: "node-2 has no route to 10.244.1.0/24" }] },
      result("flaky", [], p12),
    ],
    ledger: [{ code: "duplicate-ip", ip: "10.244.1.2", nodes: ["node-1", "node-2"], message: "10.244.1.2 is allocated on 2 nodes: node-1, node-2" }],
  });
}

describe("buildProbeReport", () => {
  it("orders results like the plan and validates against its schema", () => {
    const r = report();
    expect(r.results.map((x) => x.pair.id)).toEqual([p12.id, p21.id, p11.id]);
    expect(r.summary.durationMs).toBe(1500);
    expect(probeReportSchema.parse(JSON.parse(JSON.stringify(r)))).toEqual(r);
  });
  it("events round-trip through the event schema and a bad event is rejected", () => {
    const r = report();
    const events: ProbeEvent[] = [
      { v: 1, type: "run-started", runId: "run-1", startedAt: r.startedAt, cluster: r.cluster, options: r.options, plan: r.plan },
      { v: 1, type: "pair-result", runId: "run-1", result: r.results[0]!, final: true, progress: { done: 1, total: 3 } },
      { v: 1, type: "retry-started", runId: "run-1", pairs: [p21.id], attempt: 2 },
      { v: 1, type: "run-finished", runId: "run-1", report: r },
      { v: 1, type: "run-failed", runId: "run-1", error: { code: "ERR_X", message: "x" } },
    ];
    for (const e of events) expect(probeEventSchema.parse(JSON.parse(JSON.stringify(e)))).toEqual(e);
    expect(probeEventSchema.safeParse({ v: 2, type: "pair-result" }).success).toBe(false);
    expect(probeEventSchema.safeParse({ v: 1, type: "nonsense", runId: "x" }).success).toBe(false);
  });
});

describe("renderJunit", () => {
  it("renders one suite per family and path, a failure with its diagnosis, flaky as a pass, and the ledger", () => {
    expect(renderJunit(report())).toBe(`<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="flatnet check" tests="4" failures="2" errors="0" skipped="0" time="1.500">
  <testsuite name="pod connectivity IPv4 cross-node" tests="2" failures="1" errors="0" skipped="0">
    <testcase classname="node-1-&gt;node-2" name="pod-1-0 (10.244.1.2) -&gt; pod-2-0 (10.244.2.2)" time="0.000100">
      <system-out>flaky: passed on attempt 2</system-out>
    </testcase>
    <testcase classname="node-2-&gt;node-1" name="pod-2-0 (10.244.2.2) -&gt; pod-1-0 (10.244.1.2)">
      <failure message="tcp-unreachable" type="tcp-unreachable">tcp: timeout &lt;5s&gt;
node-2 has no route to 10.244.1.0/24</failure>
    </testcase>
  </testsuite>
  <testsuite name="pod connectivity IPv4 same-node" tests="1" failures="0" errors="0" skipped="0">
    <testcase classname="node-1-&gt;node-1" name="pod-1-0 (10.244.1.2) -&gt; pod-1-1 (10.244.1.3)" time="0.000100"></testcase>
  </testsuite>
  <testsuite name="ipam ledger" tests="1" failures="1" errors="0" skipped="0">
    <testcase classname="ipam-ledger" name="duplicate-ip 10.244.1.2">
      <failure message="10.244.1.2 is allocated on 2 nodes: node-1, node-2" type="duplicate-ip"/>
    </testcase>
  </testsuite>
</testsuites>
`);
  });
});

describe("buildProbeMatrix", () => {
  it.each<[PairVerdict | undefined, PairVerdict, PairVerdict]>([
    [undefined, "ok", "ok"],
    ["ok", "failed", "failed"],
    ["flaky", "ok", "flaky"],
    ["inconclusive", "failed", "failed"],
    ["excluded", "ok", "ok"],
  ])("worse of %s and %s is %s", (a, b, expected) => {
    expect(worseVerdict(a, b)).toBe(expected);
  });
  it("aggregates by node with the diagonal as same-node and keeps empty nodes from the axis", () => {
    const m = buildProbeMatrix(report().results, "node", ["node-3"]);
    expect(m.axis).toEqual(["node-1", "node-2", "node-3"]);
    expect(m.cells.map((row) => row.map((c) => c.verdict ?? "-"))).toEqual([
      ["ok", "flaky", "-"],
      ["failed", "-", "-"],
      ["-", "-", "-"],
    ]);
    expect(m.cells[0]![1]).toMatchObject({ pairs: 1, p50Ms: 0.1, p99Ms: 0.4 });
  });
  it("aggregates by pod", () => {
    expect(buildProbeMatrix(report().results, "pod").axis).toEqual(["pod-1-0", "pod-1-1", "pod-2-0"]);
  });
});
