/**
 * Whole-document probe outputs turned into the event stream the matrix folds: a `ProbeReport`
 * (`flatnet check --json` without streaming, or a saved report) and the lab's own pair check
 * (`flatnet lab check --json`: ICMP + TCP between every pod pair, with the source the responder saw).
 */
import { type PairResult, type ProbeEvent, type ProbeReport, probeReportSchema } from "@flatnet/core";
import { z } from "zod";

const labCheckSchema = z.object({
  ok: z.boolean(),
  pods: z.array(z.object({ name: z.string(), node: z.string(), ips: z.array(z.string()) })),
  pairs: z.array(
    z.object({
      from: z.string(),
      to: z.string(),
      family: z.enum(["IPv4", "IPv6"]),
      dst: z.string(),
      expectedSource: z.string(),
      icmp: z.boolean(),
      tcp: z.boolean(),
      sawSource: z.string().optional(),
      noNat: z.boolean(),
      ok: z.boolean(),
      error: z.string().optional(),
    }),
  ),
  durationMs: z.number(),
});
export type LabCheckReport = z.infer<typeof labCheckSchema>;

const OPTIONS = { udpCount: 0, tcpCount: 1, mtuTcpBytes: 0, podMtu: 0, timeoutMs: 1000, retries: 0, concurrency: 1 };

export function labCheckToEvents(report: LabCheckReport, runId: string, cluster: { name: string; source: "lab" | "kubernetes" | "fixture" }, now: string): ProbeEvent[] {
  const nodeOf = new Map(report.pods.map((pod) => [pod.name, pod.node]));
  const results: PairResult[] = report.pairs.map((pair) => {
    const srcNode = nodeOf.get(pair.from) ?? "unknown";
    const dstNode = nodeOf.get(pair.to) ?? "unknown";
    const reachable = pair.icmp || pair.tcp;
    const problems: PairResult["problems"] = [];
    if (!pair.tcp) problems.push("tcp-unreachable");
    if (reachable && !pair.noNat) problems.push("nat-violation");
    return {
      pair: {
        id: `${pair.from}>${pair.to}/${pair.family}`,
        src: { pod: pair.from, node: srcNode, ip: pair.expectedSource, port: 1 },
        dst: { pod: pair.to, node: dstNode, ip: pair.dst, port: 1 },
        family: pair.family,
        path: srcNode === dstNode ? "same-node" : "cross-node",
      },
      verdict: pair.ok ? "ok" : "failed",
      attempts: 1,
      problems,
      nat: {
        verdict: pair.sawSource === undefined ? "unknown" : pair.noNat ? "nat-free" : "snat-other",
        ...(pair.sawSource === undefined ? {} : { observedSrc: pair.sawSource }),
        expectedSrc: pair.expectedSource,
      },
      ...(pair.error ? { error: pair.error } : {}),
      diagnosis: [],
    };
  });
  const plan = { mode: "all-pods" as const, families: [...new Set(report.pairs.map((p) => p.family))], pairs: results.map((r) => r.pair), excluded: [] };
  const failed = results.filter((r) => r.verdict === "failed").length;
  const nat = results.filter((r) => r.problems.includes("nat-violation")).length;
  const full: ProbeReport = {
    v: 1,
    kind: "flatnet-probe-report",
    runId,
    cluster,
    startedAt: now,
    finishedAt: now,
    options: OPTIONS,
    plan,
    results,
    ledger: [],
    nodeDiagnosis: [],
    summary: { pairs: results.length, ok: results.length - failed, flaky: 0, failed, inconclusive: 0, excluded: 0, natViolations: nat, mtuFailures: 0, ledgerFindings: 0, durationMs: report.durationMs, line: `${failed}/${results.length} pairs failed (${nat} NAT violations), 0 excluded` },
  };
  return [
    { v: 1, type: "run-started", runId, startedAt: now, cluster, options: OPTIONS, plan },
    ...results.map((result, i): ProbeEvent => ({ v: 1, type: "pair-result", runId, result, final: true, progress: { done: i + 1, total: results.length } })),
    { v: 1, type: "run-finished", runId, report: full },
  ];
}

/** Reads a whole JSON document as probe events; undefined when it is neither a ProbeReport nor a lab check. */
export function documentToEvents(json: unknown, cluster: { name: string; source: "lab" | "kubernetes" | "fixture" }, now: string): ProbeEvent[] | undefined {
  const report = probeReportSchema.safeParse(json);
  if (report.success) return [{ v: 1, type: "run-finished", runId: report.data.runId, report: report.data as ProbeReport }];
  const lab = labCheckSchema.safeParse(json);
  if (lab.success) return labCheckToEvents(lab.data, `lab-check-${now}`, cluster, now);
  return undefined;
}
