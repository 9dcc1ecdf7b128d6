/**
 * The connectivity heatmap's model: probe events folded into a node x node grid, each cell core's `MatrixCell` of
 * its pairs (`addToMatrixCell`) packed into typed arrays. Pure and DOM-free: the
 * extension host uses it for problems and the report, the webview bundles the same code to paint the heatmap.
 * The grid is typed arrays (500 nodes = 250,000 cells) so folding and painting stay linear and allocation-free.
 */
import { addToMatrixCell, emptyMatrixCell, type MatrixCell, type PairResult, type ProbeEvent } from "@flatnet/core";

/** Cell states, worst last: a cell shows the worst verdict among its pod pairs (a verdict's state has its name). */
export const CellState = { none: 0, pending: 1, excluded: 2, ok: 3, flaky: 4, inconclusive: 5, failed: 6 } as const;
export type CellStateValue = (typeof CellState)[keyof typeof CellState];

/** Marks drawn on a cell, as bit flags. */
export const CellMark = { nat: 1, loss: 2, mtu: 4 } as const;

export interface MatrixGrid {
  nodes: string[];
  /** n*n, row = source node, column = destination node. */
  state: Uint8Array;
  marks: Uint8Array;
  /** Worst p50 RTT in ms among the cell's pairs; NaN when none measured. */
  rttMs: Float32Array;
}

export interface CellDetail {
  src: string;
  dst: string;
  state: CellStateValue;
  marks: number;
  rttMs: number | undefined;
  pairs: PairResult[];
  /** Distinct diagnosis messages of the cell's failing pairs. */
  diagnosis: string[];
}

export function createGrid(nodes: readonly string[]): MatrixGrid {
  const size = nodes.length * nodes.length;
  return { nodes: [...nodes], state: new Uint8Array(size), marks: new Uint8Array(size), rttMs: new Float32Array(size).fill(Number.NaN) };
}

function marksOf(cell: MatrixCell): number {
  return (cell.natViolations > 0 ? CellMark.nat : 0) | (cell.udpLosses > 0 ? CellMark.loss : 0) | (cell.mtuFailures > 0 ? CellMark.mtu : 0);
}

/**
 * Folds probe events into a grid. A later result for the same pair id replaces the earlier one (retries),
 * so the cell is recomputed from its pairs rather than accumulated.
 */
export class HeatmapModel {
  grid: MatrixGrid;
  runId: string | undefined;
  progress = { done: 0, total: 0 };
  finished = false;
  error: string | undefined;
  readonly #nodeIndex = new Map<string, number>();
  readonly #pairs = new Map<string, PairResult>();
  #cellPairs = new Map<number, Map<string, PairResult>>();

  constructor(nodes: readonly string[]) {
    this.grid = createGrid(nodes);
    nodes.forEach((name, index) => this.#nodeIndex.set(name, index));
  }

  /** Applies one event; returns the cell indexes that changed (for incremental repaint). */
  apply(event: ProbeEvent): number[] {
    switch (event.type) {
      case "run-started": {
        this.#reset(event.runId, event.plan.pairs.length);
        const extra = event.plan.pairs.flatMap((pair) => [pair.src.node, pair.dst.node]).filter((node) => !this.#nodeIndex.has(node));
        if (extra.length > 0) this.#grow(extra);
        const changed = new Set<number>();
        for (const pair of event.plan.pairs) {
          const cell = this.#cell(pair.src.node, pair.dst.node);
          if (this.grid.state[cell] === CellState.none) this.grid.state[cell] = CellState.pending;
          changed.add(cell);
        }
        return [...changed];
      }
      case "pair-result": {
        if (this.runId !== undefined && event.runId !== this.runId) return [];
        this.progress = { ...event.progress };
        return [this.#put(event.result)];
      }
      case "retry-started":
        return [];
      case "run-finished": {
        if (this.runId === undefined) this.#reset(event.report.runId, event.report.results.length);
        const changed = event.report.results.map((result) => this.#put(result));
        this.finished = true;
        this.progress = { done: event.report.results.length, total: event.report.results.length };
        return changed;
      }
      case "run-failed":
        this.finished = true;
        this.error = `${event.error.code}: ${event.error.message}`;
        return [];
    }
  }

  results(): PairResult[] {
    return [...this.#pairs.values()];
  }

  detail(src: string, dst: string): CellDetail {
    const cell = this.#cell(src, dst);
    const pairs = [...(this.#cellPairs.get(cell)?.values() ?? [])];
    const diagnosis = [...new Set(pairs.flatMap((pair) => (pair.verdict === "ok" ? [] : pair.diagnosis.map((d) => d.message))))];
    const rtt = this.grid.rttMs[cell]!;
    return { src, dst, state: this.grid.state[cell] as CellStateValue, marks: this.grid.marks[cell]!, rttMs: Number.isNaN(rtt) ? undefined : rtt, pairs, diagnosis };
  }

  #reset(runId: string, total: number): void {
    this.runId = runId;
    this.finished = false;
    this.error = undefined;
    this.progress = { done: 0, total };
    this.#pairs.clear();
    this.#cellPairs.clear();
    this.grid.state.fill(CellState.none);
    this.grid.marks.fill(0);
    this.grid.rttMs.fill(Number.NaN);
  }

  #grow(extra: string[]): void {
    const old = this.grid;
    const nodes = [...old.nodes, ...new Set(extra)];
    const grid = createGrid(nodes);
    const n = old.nodes.length;
    for (let row = 0; row < n; row++) {
      grid.state.set(old.state.subarray(row * n, (row + 1) * n), row * nodes.length);
      grid.marks.set(old.marks.subarray(row * n, (row + 1) * n), row * nodes.length);
      grid.rttMs.set(old.rttMs.subarray(row * n, (row + 1) * n), row * nodes.length);
    }
    this.#cellPairs = new Map([...this.#cellPairs].map(([cell, pairs]) => [Math.floor(cell / n) * nodes.length + (cell % n), pairs]));
    nodes.forEach((name, index) => this.#nodeIndex.set(name, index));
    this.grid = grid;
  }

  #cell(src: string, dst: string): number {
    if (!this.#nodeIndex.has(src) || !this.#nodeIndex.has(dst)) this.#grow([src, dst].filter((node) => !this.#nodeIndex.has(node)));
    return this.#nodeIndex.get(src)! * this.grid.nodes.length + this.#nodeIndex.get(dst)!;
  }

  #put(result: PairResult): number {
    const cell = this.#cell(result.pair.src.node, result.pair.dst.node);
    this.#pairs.set(result.pair.id, result);
    let pairs = this.#cellPairs.get(cell);
    if (!pairs) this.#cellPairs.set(cell, (pairs = new Map()));
    pairs.set(result.pair.id, result);
    const summary = emptyMatrixCell();
    for (const pair of pairs.values()) addToMatrixCell(summary, pair);
    this.grid.state[cell] = summary.verdict === undefined ? CellState.none : CellState[summary.verdict];
    this.grid.marks[cell] = marksOf(summary);
    this.grid.rttMs[cell] = summary.p50Ms ?? Number.NaN;
    return cell;
  }
}
