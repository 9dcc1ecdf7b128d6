import {
  PROBE_PROTOCOL_VERSION,
  type Diagnosis,
  type LedgerFinding,
  type PairResult,
  type ProbeOptions,
  type ProbePlan,
  type ProbeReport,
  type ProbeSummary,
} from "./types.ts";

/**
 * Count a run's results. `line` is the console summary, `N/M pairs failed (k NAT violations), x excluded`,
 * where M counts probed pairs, N failed ones; flaky and inconclusive counts follow only when non-zero.
 * @example summarizeProbeResults(results, 0, 12.5).line === "1/6 pairs failed (1 NAT violation), 0 excluded"
 */
export function summarizeProbeResults(results: readonly PairResult[], ledgerFindings: number, durationMs: number): ProbeSummary {
  const count = (v: PairResult["verdict"]): number => results.filter((r) => r.verdict === v).length;
  const excluded = count("excluded");
  const s = {
    pairs: results.length - excluded,
    ok: count("ok"),
    flaky: count("flaky"),
    failed: count("failed"),
    inconclusive: count("inconclusive"),
    excluded,
    natViolations: results.filter((r) => r.problems.includes("nat-violation")).length,
    mtuFailures: results.filter((r) => r.problems.some((p) => p === "mtu-tcp-blackhole" || p === "mtu-udp-blackhole")).length,
    ledgerFindings,
    durationMs: Math.round(durationMs * 10) / 10,
  };
  const parts = [
    `${s.failed}/${s.pairs} pairs failed (${s.natViolations} NAT violation${s.natViolations === 1 ? "" : "s"}), ${s.excluded} excluded`,
  ];
  if (s.flaky > 0) parts.push(`${s.flaky} flaky`);
  if (s.inconclusive > 0) parts.push(`${s.inconclusive} inconclusive`);
  if (s.ledgerFindings > 0) parts.push(`${s.ledgerFindings} IPAM ledger finding${s.ledgerFindings === 1 ? "" : "s"}`);
  return { ...s, line: parts.join(", ") };
}

/** Whether a report is a pass: no failed or inconclusive pair and no ledger finding (flaky passes). */
export function reportPassed(report: Pick<ProbeReport, "summary">): boolean {
  return report.summary.failed === 0 && report.summary.inconclusive === 0 && report.summary.ledgerFindings === 0;
}

export interface ReportInput {
  runId: string;
  cluster: ProbeReport["cluster"];
  startedAt: Date;
  finishedAt: Date;
  options: ProbeOptions;
  plan: ProbePlan;
  results: PairResult[];
  ledger?: LedgerFinding[];
  nodeDiagnosis?: Diagnosis[];
}

/** Assemble the report document of a run; results are ordered like the plan. */
export function buildProbeReport(input: ReportInput): ProbeReport {
  const order = new Map(input.plan.pairs.map((p, i) => [p.id, i]));
  const results = [...input.results].sort((a, b) => (order.get(a.pair.id) ?? 0) - (order.get(b.pair.id) ?? 0));
  const ledger = input.ledger ?? [];
  return {
    v: PROBE_PROTOCOL_VERSION,
    kind: "flatnet-probe-report",
    runId: input.runId,
    cluster: input.cluster,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    options: input.options,
    plan: input.plan,
    results,
    ledger,
    nodeDiagnosis: input.nodeDiagnosis ?? [],
    summary: summarizeProbeResults(results, ledger.length, input.finishedAt.getTime() - input.startedAt.getTime()),
  };
}
