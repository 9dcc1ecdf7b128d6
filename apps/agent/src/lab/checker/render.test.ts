import { describe, expect, it } from "vitest";
import type { CheckReport, PairResult } from "./checker.ts";
import { renderMatrix } from "./render.ts";

const pair = (from: string, to: string, family: "IPv4" | "IPv6", overrides: Partial<PairResult> = {}): PairResult => ({
  from,
  to,
  family,
  dst: "x",
  expectedSource: "s",
  icmp: true,
  tcp: true,
  sawSource: "s",
  noNat: true,
  ok: true,
  ...overrides,
});

const pods = ["a", "b"].map((name) => ({ name, netns: `fn-${name}`, node: "node1", ips: ["10.0.0.1", "fd00::1"] }));

describe("renderMatrix", () => {
  it("prints ok per family and a summary when everything passed", () => {
    const report: CheckReport = {
      ok: true,
      pods,
      pairs: [pair("a", "b", "IPv6"), pair("a", "b", "IPv4"), pair("b", "a", "IPv4"), pair("b", "a", "IPv6")],
      durationMs: 123.4,
    };
    expect(renderMatrix(report)).toBe(
      [
        "from \\ to  a      b",
        "a          -      ok/ok",
        "b          ok/ok  -",
        "",
        "all 4 pod pairs reachable over ICMP and TCP, every source address preserved (no NAT) in 123 ms",
        "",
      ].join("\n"),
    );
  });

  it.each([
    [{ icmp: false, tcp: false, ok: false, error: "ICMP: no echo reply; TCP timeout" }, "FAIL"],
    [{ icmp: false, ok: false, error: "ICMP: no echo reply" }, "icmp"],
    [{ tcp: false, noNat: false, ok: false, error: "TCP ECONNREFUSED" }, "tcp"],
    [{ noNat: false, sawSource: "10.9.9.9", ok: false, error: "NAT: responder saw 10.9.9.9, expected s" }, "nat"],
  ] as const)("marks a failed pair %j as %s and lists it", (failure, mark) => {
    const report: CheckReport = { ok: false, pods, pairs: [pair("a", "b", "IPv4", failure), pair("b", "a", "IPv4")], durationMs: 1 };
    const text = renderMatrix(report);
    expect(text.split("\n")[1]?.split(/\s+/)).toEqual(["a", "-", mark]);
    expect(text).toContain(`1 of 2 pod pairs failed:\n  a -> b (x): ${failure.error}\n`);
  });
});
