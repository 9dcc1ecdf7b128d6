import { describe, expect, it } from "vitest";
import { goodDial, pair, reply } from "./fixtures.test-util.ts";
import { classifyNat, combineAttempts, evaluateAttempt, percentile, summarizeRtt, type AttemptOutcome } from "./verdict.ts";
import type { DialResult } from "./types.ts";

const nodeIps = ["172.31.0.11"];

describe("classifyNat", () => {
  it.each([
    ["10.244.1.2", "10.244.1.2", "nat-free"],
    ["::ffff:10.244.1.2", "10.244.1.2", "nat-free"],
    ["10.244.1.2", "::ffff:10.244.1.2", "nat-free"],
    ["172.31.0.11", "10.244.1.2", "snat-to-node-ip"],
    ["::ffff:172.31.0.11", "10.244.1.2", "snat-to-node-ip"],
    ["192.0.2.1", "10.244.1.2", "snat-other"],
    ["fd00:10:244:1::2", "fd00:10:244:1:0::2", "nat-free"],
    [undefined, "10.244.1.2", "unknown"],
    ["", "10.244.1.2", "unknown"],
  ] as const)("observed %s, sender %s -> %s", (observed, sender, verdict) => {
    expect(classifyNat(observed, sender, nodeIps)).toBe(verdict);
  });
});

describe("evaluateAttempt", () => {
  const p = pair();
  const cases: [string, (d: DialResult) => DialResult, string[], string][] = [
    ["all good", (d) => d, [], "nat-free"],
    ["tcp refused", (d) => ({ ...d, tcp: { ok: false, rttMs: [], error: "ECONNREFUSED" }, udp: { ...d.udp!, reply: undefined } as DialResult["udp"] }), ["tcp-unreachable"], "unknown"],
    ["everything lost", (d) => ({ ...d, tcp: { ok: false, rttMs: [], error: "timeout" }, udp: { sent: 2, received: 0, rttMs: [] } }), ["tcp-unreachable", "udp-unreachable"], "unknown"],
    ["udp partial loss", (d) => ({ ...d, udp: { sent: 2, received: 1, rttMs: [0.1] } }), ["udp-loss"], "nat-free"],
    ["snat to node", (d) => ({ ...d, tcp: { ...d.tcp!, reply: reply(p, "172.31.0.11") } }), ["nat-violation"], "snat-to-node-ip"],
    ["snat other", (d) => ({ ...d, tcp: { ...d.tcp!, reply: reply(p, "192.0.2.9") } }), ["nat-violation"], "snat-other"],
    ["mapped source is not NAT", (d) => ({ ...d, tcp: { ...d.tcp!, reply: reply(p, "::ffff:10.244.1.2") } }), [], "nat-free"],
    ["dnat", (d) => ({ ...d, tcp: { ...d.tcp!, reply: reply(p, p.src.ip, { localDst: { ip: "10.244.2.99", port: 7471 } }) } }), ["dnat"], "nat-free"],
    ["wrong responder", (d) => ({ ...d, tcp: { ...d.tcp!, reply: reply(p, p.src.ip, { responder: { pod: "other", node: "node-2", podIps: [], nodePodCidrs: [] } }) } }), ["wrong-responder"], "nat-free"],
    ["tcp mtu black hole", (d) => ({ ...d, mtu: { ...d.mtu!, tcpOk: false, tcpError: "timeout" } }), ["mtu-tcp-blackhole"], "nat-free"],
    ["udp mtu black hole", (d) => ({ ...d, mtu: { ...d.mtu!, udpOk: false } }), ["mtu-udp-blackhole"], "nat-free"],
    // an unreachable pair is not also an MTU failure
    ["mtu not judged when tcp is down", (d) => ({ ...d, tcp: { ok: false, rttMs: [] }, mtu: { ...d.mtu!, tcpOk: false } }), ["tcp-unreachable"], "nat-free"],
  ];
  it.each(cases)("%s", (_name, mutate, problems, nat) => {
    const outcome = evaluateAttempt(p, mutate(goodDial(p)), nodeIps);
    expect(outcome.problems).toEqual(problems);
    expect(outcome.pass).toBe(problems.length === 0);
    expect(outcome.inconclusive).toBe(false);
    expect(outcome.nat.verdict).toBe(nat);
  });

  it("a failed control path is inconclusive, not a data-path failure", () => {
    const outcome = evaluateAttempt(p, { pairId: p.id, controlOk: false, controlError: "connect ECONNREFUSED agent.sock" }, nodeIps);
    expect(outcome).toEqual({
      pass: false,
      inconclusive: true,
      problems: ["control-path"],
      nat: { verdict: "unknown", expectedSrc: "10.244.1.2" },
      rttSamples: [],
      error: "connect ECONNREFUSED agent.sock",
    });
  });
});

describe("combineAttempts", () => {
  const p = pair();
  const pass: AttemptOutcome = { pass: true, inconclusive: false, problems: [], nat: { verdict: "nat-free", observedSrc: "10.244.1.2", expectedSrc: "10.244.1.2" }, rttSamples: [0.2, 0.1, 0.3] };
  const fail: AttemptOutcome = { pass: false, inconclusive: false, problems: ["tcp-unreachable"], nat: { verdict: "unknown", expectedSrc: "10.244.1.2" }, rttSamples: [], error: "tcp: timeout" };
  const lost: AttemptOutcome = { pass: false, inconclusive: true, problems: ["control-path"], nat: { verdict: "unknown", expectedSrc: "10.244.1.2" }, rttSamples: [], error: "agent down" };
  it.each([
    ["ok", [pass], "ok", 1],
    ["flaky(1)", [fail, pass], "flaky", 2],
    ["flaky(2)", [fail, lost, pass], "flaky", 3],
    ["failed", [fail, fail, fail], "failed", 3],
    ["failed beats inconclusive", [lost, fail, lost], "failed", 3],
    ["inconclusive", [lost, lost], "inconclusive", 2],
  ] as const)("%s", (_n, attempts, verdict, count) => {
    const r = combineAttempts(p, attempts);
    expect(r.verdict).toBe(verdict);
    expect(r.attempts).toBe(count);
  });
  it("reports the last data-path failure's problems and the passing attempt's RTT", () => {
    expect(combineAttempts(p, [fail, lost]).problems).toEqual(["tcp-unreachable"]);
    expect(combineAttempts(p, [fail, pass]).rtt).toEqual({ samples: 3, p50Ms: 0.2, p99Ms: 0.3 });
  });
  it("an excluded pair is excluded whatever the attempts", () => {
    expect(combineAttempts({ ...p, excluded: "node node-2 is not Ready" }, []).verdict).toBe("excluded");
  });
  it("a pair with no attempts is a bug", () => {
    expect(() => combineAttempts(p, [])).toThrow(/no attempts/);
  });
});

describe("percentile / summarizeRtt", () => {
  it.each([
    [[], 50, undefined],
    [[5], 99, 5],
    [[3, 1, 2], 50, 2],
    [[1, 2, 3, 4], 50, 2],
    [Array.from({ length: 100 }, (_, i) => i + 1), 99, 99],
    [Array.from({ length: 100 }, (_, i) => i + 1), 100, 100],
    [[1, 2], 0, 1],
  ])("%j p%i = %s", (samples, p, expected) => {
    expect(percentile(samples, p)).toBe(expected);
  });
  it("rounds to microseconds", () => {
    expect(summarizeRtt([0.12345, 0.5])).toEqual({ samples: 2, p50Ms: 0.123, p99Ms: 0.5 });
    expect(summarizeRtt([])).toBeUndefined();
  });
});
