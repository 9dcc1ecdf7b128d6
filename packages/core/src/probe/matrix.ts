import type { PairResult, PairVerdict } from "./types.ts";

/** One cell of a node x node (or pod x pod) matrix: the pairs from row to column, aggregated. */
export interface MatrixCell {
  /** The worst verdict among the cell's pairs; undefined when no pair falls in the cell. */
  verdict?: PairVerdict;
  pairs: number;
  counts: Record<PairVerdict, number>;
  natViolations: number;
  mtuFailures: number;
  /** Pairs that lost UDP echoes (the `udp-loss` problem or a loss ratio above 0). */
  udpLosses: number;
  /** Largest p50 RTT among the cell's pairs (ms). */
  p50Ms?: number;
  /** Largest p99 RTT among the cell's pairs (ms). */
  p99Ms?: number;
}

export interface ProbeMatrix {
  by: "node" | "pod";
  /** Row and column labels (same order on both axes). */
  axis: string[];
  /** cells[row][column]: sources in rows, destinations in columns. */
  cells: MatrixCell[][];
}

// Worst first: what a cell shows when its pairs disagree.
const SEVERITY: PairVerdict[] = ["failed", "inconclusive", "flaky", "ok", "excluded"];

/** The worse of two verdicts (failed > inconclusive > flaky > ok > excluded). */
export function worseVerdict(a: PairVerdict | undefined, b: PairVerdict): PairVerdict {
  if (a === undefined) return b;
  return SEVERITY.indexOf(a) <= SEVERITY.indexOf(b) ? a : b;
}

/**
 * Aggregate pair results into a matrix by node (the heatmap of a flat network: the diagonal is same-node)
 * or by pod. Axis labels are sorted; `axis` may be given to keep nodes with no pairs visible.
 */
export function buildProbeMatrix(results: readonly PairResult[], by: "node" | "pod", axis?: readonly string[]): ProbeMatrix {
  const key = (e: { pod: string; namespace?: string; node: string }): string =>
    by === "node" ? e.node : e.namespace ? `${e.namespace}/${e.pod}` : e.pod;
  const labels = [...new Set([...(axis ?? []), ...results.flatMap((r) => [key(r.pair.src), key(r.pair.dst)])])].sort();
  const index = new Map(labels.map((l, i) => [l, i]));
  const cells: MatrixCell[][] = labels.map(() => labels.map(() => emptyMatrixCell()));
  for (const r of results) {
    const cell = cells[index.get(key(r.pair.src)) as number]?.[index.get(key(r.pair.dst)) as number];
    if (cell !== undefined) addToMatrixCell(cell, r);
  }
  return { by, axis: labels, cells };
}

/** A cell with no pairs. */
export function emptyMatrixCell(): MatrixCell {
  return { pairs: 0, counts: { ok: 0, flaky: 0, failed: 0, inconclusive: 0, excluded: 0 }, natViolations: 0, mtuFailures: 0, udpLosses: 0 };
}

/**
 * Adds one pair result to a cell: the worst verdict, the fault counts, the largest RTTs.
 * @example
 * const cell = emptyMatrixCell();
 * for (const result of results) addToMatrixCell(cell, result);
 */
export function addToMatrixCell(cell: MatrixCell, r: PairResult): void {
  cell.pairs++;
  cell.counts[r.verdict]++;
  cell.verdict = worseVerdict(cell.verdict, r.verdict);
  if (r.problems.includes("nat-violation")) cell.natViolations++;
  if (r.problems.some((p) => p === "mtu-tcp-blackhole" || p === "mtu-udp-blackhole")) cell.mtuFailures++;
  if (r.problems.includes("udp-loss") || (r.udpLossRatio ?? 0) > 0) cell.udpLosses++;
  if (r.rtt !== undefined) {
    cell.p50Ms = Math.max(cell.p50Ms ?? 0, r.rtt.p50Ms);
    cell.p99Ms = Math.max(cell.p99Ms ?? 0, r.rtt.p99Ms);
  }
}
