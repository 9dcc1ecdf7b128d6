import { expect } from "vitest";
import { reportPassed, type PairResult, type PairVerdict, type ProbeReport } from "@flatnet/core";

// What every fault catalogue of the tracer shares: a fault's shape, the pairs it must break, and the assertion
// that each broken pair is explained by a first finding naming the object (and never "unexplained").

export interface Fault {
  name: string;
  inject(): void | Promise<void>;
  repair(): void | Promise<void>;
  broken: string[];
  verdict?: PairVerdict;
  /** Code and place of the first finding, and a text its message must contain (the object); place "" for any. */
  first: [code: string, node: string, object: string | RegExp];
  /** Pairs from this pod are inconclusive rather than failed (its own control socket is gone with it). */
  inconclusiveFrom?: string;
  transport?: "agents";
}

/** Pair ids `a>b/IPv4` from every pod of `from` to every other pod of `to`. */
export const between = (from: readonly string[], to: readonly string[]): string[] => from.flatMap((s) => to.flatMap((d) => (s === d ? [] : [`${s}>${d}/IPv4`])));

/** Both directions between two groups of pods, sorted. */
export const both = (a: readonly string[], b: readonly string[]): string[] => [...between(a, b), ...between(b, a)].sort();

export const brokenResults = (report: ProbeReport): PairResult[] => report.results.filter((r) => r.verdict !== "ok" && r.verdict !== "excluded");

/** Exactly the fault's pairs are broken, each with the fault's verdict and first finding, none unexplained. */
export function expectExplained(report: ProbeReport, fault: Fault): void {
  const bad = brokenResults(report);
  const seen = JSON.stringify(report.results.map((r) => [r.pair.id, r.verdict, r.problems]));
  expect(bad.map((r) => r.pair.id).sort(), seen).toEqual(fault.broken);
  const [code, node, object] = fault.first;
  for (const r of bad) {
    if (fault.inconclusiveFrom !== undefined && r.pair.src.pod === fault.inconclusiveFrom) {
      expect(r.verdict).toBe("inconclusive");
      continue;
    }
    expect(r.verdict).toBe(fault.verdict ?? "failed");
    expect(r.diagnosis.map((d) => d.code), JSON.stringify(r.hops)).not.toContain("unexplained");
    const firstFinding = r.diagnosis[0]!;
    expect([firstFinding.code, node === "" ? "" : firstFinding.node], JSON.stringify(r.diagnosis)).toEqual([code, node]);
    if (typeof object === "string") expect(firstFinding.message).toContain(object);
    else expect(firstFinding.message).toMatch(object);
  }
}

/** Waits until a check passes: a repaired fault (a port back up, an agent restarted) must not leak into the next. */
export async function waitHealthy(check: () => Promise<ProbeReport>): Promise<void> {
  let last = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    const report = await check();
    if (reportPassed(report)) return;
    last = report.summary.line;
  }
  throw new Error(`the lab did not recover from the previous fault: ${last}`);
}
