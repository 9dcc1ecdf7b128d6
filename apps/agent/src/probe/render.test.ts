import { describe, expect, it } from "vitest";
import { buildProbeReport, DEFAULT_PROBE_OPTIONS, type PairResult, type ProbePair } from "@flatnet/core";
import { renderProgress, renderReport } from "./render.ts";

const pair = (s: string, sn: string, d: string, dn: string): ProbePair => ({
  id: `${s}>${d}/IPv4`,
  src: { pod: s, node: sn, ip: `10.0.0.${s.length}`, port: 7471 },
  dst: { pod: d, node: dn, ip: `10.0.1.${d.length}`, port: 7471 },
  family: "IPv4",
  path: sn === dn ? "same-node" : "cross-node",
});

const results: PairResult[] = [
  { pair: pair("a", "n1", "bb", "n2"), verdict: "ok", attempts: 1, problems: [], nat: { verdict: "nat-free", expectedSrc: "10.0.0.1" }, rtt: { samples: 4, p50Ms: 0.123, p99Ms: 0.3 }, diagnosis: [] },
  {
    pair: pair("bb", "n2", "a", "n1"), verdict: "failed", attempts: 3, problems: ["nat-violation"],
    nat: { verdict: "snat-to-node-ip", observedSrc: "172.31.0.12", expectedSrc: "10.0.0.2" }, rtt: { samples: 4, p50Ms: 0.2, p99Ms: 0.4 },
    error: "nat: responder saw 172.31.0.12 (snat-to-node-ip), expected 10.0.0.2",
    diagnosis: [{ code: "snat-rule", node: "n2", message: "n2 rewrites the source of 10.0.0.2 -> 10.0.1.1: masquerade (nft ip t post #2)" }],
  },
];

const report = buildProbeReport({
  runId: "r", cluster: { name: "lab fn-", source: "lab" }, startedAt: new Date(0), finishedAt: new Date(1500),
  options: DEFAULT_PROBE_OPTIONS, plan: { mode: "all-pods", families: ["IPv4"], pairs: results.map((r) => r.pair), excluded: [] }, results,
});

describe("renderReport", () => {
  it("counts node endpoints apart from pods in the header", () => {
    const nodePair: ProbePair = {
      id: "node:n1>bb/IPv4",
      src: { pod: "node:n1", node: "n1", ip: "172.31.0.11", port: 7471, kind: "node", sourceIps: ["172.31.0.11"] },
      dst: { pod: "bb", node: "n2", ip: "10.0.1.2", port: 7471 },
      family: "IPv4",
      path: "cross-node",
      kind: "node-pod",
    };
    const withNode = buildProbeReport({
      runId: "r", cluster: { name: "lab fn-", source: "lab" }, startedAt: new Date(0), finishedAt: new Date(1500),
      options: DEFAULT_PROBE_OPTIONS, plan: { mode: "all-pods", families: ["IPv4"], pairs: [...results.map((r) => r.pair), nodePair], excluded: [] },
      results: [...results, { pair: nodePair, verdict: "ok", attempts: 1, problems: [], nat: { verdict: "nat-free", expectedSrc: "172.31.0.11", expectedSrcs: ["172.31.0.11"] }, diagnosis: [] }],
    });
    expect(renderReport(withNode, { color: false }).split("\n")[0]).toBe("flatnet check: lab fn- (2 nodes, 2 pods, 1 node endpoints, IPv4), all-pods: 3 pairs in 1.50 s");
  });

  it("prints the matrix, the broken pairs with their diagnosis and the summary line, without colour", () => {
    expect(renderReport(report, { color: false })).toBe(
      [
        "flatnet check: lab fn- (2 nodes, 2 pods, IPv4), all-pods: 2 pairs in 1.50 s",
        "",
        "             a        bb",
        "  a               ✓ 0.12",
        "  bb   ✗N 0.20          ",
        "  rows send, columns answer; cell: worst verdict (✓ ok, ~ flaky, ✗ failed, ? inconclusive, - excluded), then the largest p50 RTT in ms; N = NAT violation, M = MTU black hole",
        "",
        "FAILED   bb (10.0.0.2) -> a (10.0.1.1) IPv4 cross-node: nat-violation",
        "         nat: responder saw 172.31.0.12 (snat-to-node-ip), expected 10.0.0.2",
        "         -> n2 rewrites the source of 10.0.0.2 -> 10.0.1.1: masquerade (nft ip t post #2)",
        "",
        "1/2 pairs failed (1 NAT violation), 0 excluded",
        "",
      ].join("\n"),
    );
  });
  it("colours only when asked", () => {
    expect(renderReport(report, { color: true })).toContain("\u001b[31m1/2 pairs failed");
    expect(renderReport(report, { color: false })).not.toContain("\u001b[");
  });
  it("groups by node on request", () => {
    expect(renderReport(report, { color: false, by: "node" }).split("\n")[2]).toBe("            n1        n2");
  });
});

describe("renderProgress", () => {
  it.each([
    [10, 30, 0, "\r  10/30 pairs   "],
    [30, 30, 2, "\r  30/30 pairs (2 failing)   "],
  ])("%i/%i (%i failing)", (done, total, failed, text) => {
    expect(renderProgress(done, total, failed)).toBe(text);
  });
});
