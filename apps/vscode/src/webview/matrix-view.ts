/**
 * The connectivity matrix panel: toolbar (Verify, Open JSON report), progress, legend, the node x node heatmap
 * on a canvas, a hover tooltip with the diagnosis, and a click (or arrows + Enter) drill-down to the cell's pod pairs.
 */
import type { PairResult, ProbeEvent } from "@flatnet/core";
import { type ClusterView, compareNames } from "../model/cluster-view.ts";
import { CellMark, CellState, type CellDetail, HeatmapModel } from "../model/matrix.ts";
import { button, h, icon } from "./dom.ts";
import { type HeatmapLayout, cellAt, layoutHeatmap, moveCursor, paintHeatmap } from "./heatmap.ts";
import { readPalette } from "./palette.ts";

export interface MatrixActions {
  verify(): void;
  openReport(): void;
  probePair(src: { node: string; pod?: string }, dst: { node: string; pod?: string }): void;
  copy(text: string): void;
  /** Draw this pair's path (its hops, where it breaks) in the topology. */
  showPath(pairId: string): void;
  rendered(ms: number): void;
  saveState(state: { selected?: [string, string] }): void;
}

const STATE_NAMES = ["no pairs", "pending", "excluded", "ok", "flaky", "inconclusive", "failed"];

function formatRtt(ms: number | undefined): string {
  if (ms === undefined) return "–";
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
}

function markNames(marks: number): string[] {
  return [marks & CellMark.nat ? "NAT" : "", marks & CellMark.mtu ? "MTU" : "", marks & CellMark.loss ? "loss" : ""].filter(Boolean);
}

export class MatrixView {
  #matrix = new HeatmapModel([]);
  #layout: HeatmapLayout = layoutHeatmap(0, 800);
  #pending = new Set<number>();
  #full = true;
  #frame = 0;
  #selected: [string, string] | undefined;
  #cursor: { row: number; col: number } | undefined;
  readonly #canvas = h("canvas", { class: "heatmap", tabindex: 0, role: "img", "aria-label": "connectivity matrix" });
  readonly #tooltip = h("div", { class: "tooltip", role: "tooltip", hidden: true });
  readonly #progress = h("span", { class: "progress muted" });
  readonly #summary = h("p", { class: "summary" });
  readonly #detail = h("section", { class: "detail" });
  readonly #verify = button({ class: "primary", id: "verify" }, () => this.actions.verify(), icon("play"), " Verify flat connectivity");
  readonly #report = button({ id: "open-report" }, () => this.actions.openReport(), icon("json"), " Open JSON report");

  constructor(
    private readonly root: HTMLElement,
    private readonly actions: MatrixActions,
    initial: { selected?: [string, string] } = {},
  ) {
    this.#selected = initial.selected;
    this.#canvas.addEventListener("mousemove", (event) => this.#hover(event));
    this.#canvas.addEventListener("mouseleave", () => (this.#tooltip.hidden = true));
    this.#canvas.addEventListener("click", (event) => {
      const detail = this.#cellFromEvent(event);
      if (detail) this.#open(detail);
    });
    this.#canvas.addEventListener("keydown", (event) => this.#key(event));
    this.#canvas.addEventListener("blur", () => this.#cursor && this.#repaintGrid());
    const legend = h(
      "div",
      { class: "legend" },
      ...[
        ["ok-fast", "ok, < 0.1 ms"],
        ["ok-slow", "ok, ≥ 10 ms"],
        ["flaky", "flaky"],
        ["failed", "failed"],
        ["inconclusive", "inconclusive"],
        ["pending", "pending"],
      ].map(([cls, label]) => h("span", { class: "legend-item" }, h("span", { class: `swatch ${cls}` }), label!)),
      h("span", { class: "legend-item" }, h("strong", {}, "N"), " NAT"),
      h("span", { class: "legend-item" }, h("strong", {}, "M"), " MTU"),
      h("span", { class: "legend-item" }, h("strong", {}, "L"), " loss"),
    );
    root.replaceChildren(
      h("header", { class: "toolbar" }, h("h1", {}, icon("table"), " Connectivity matrix"), this.#verify, this.#report, this.#progress),
      this.#summary,
      legend,
      h("div", { class: "canvas-wrap" }, this.#canvas, this.#tooltip),
      this.#detail,
    );
    new MutationObserver(() => this.#schedule()).observe(document.body, { attributes: true, attributeFilter: ["class"] });
    window.addEventListener("resize", () => this.#relayout());
  }

  /** Node order comes from the cluster (natural sort); a run adds any node the cluster did not list. */
  setCluster(cluster: ClusterView | null): void {
    const nodes = (cluster?.nodes ?? []).map((node) => node.name).sort(compareNames);
    const known = this.#matrix.grid.nodes;
    if (nodes.length === known.length && nodes.every((name, i) => name === known[i])) return;
    const old = this.#matrix;
    this.#matrix = new HeatmapModel(nodes);
    for (const result of old.results()) this.#matrix.apply({ v: 1, type: "pair-result", runId: old.runId ?? "", result, final: true, progress: old.progress });
    this.#matrix.runId = old.runId;
    this.#relayout();
  }

  apply(events: readonly ProbeEvent[]): void {
    let relayout = false;
    for (const event of events) {
      const before = this.#matrix.grid.nodes.length;
      const changed = this.#matrix.apply(event);
      if (this.#matrix.grid.nodes.length !== before || event.type === "run-started") relayout = true;
      for (const cell of changed) this.#pending.add(cell);
    }
    if (relayout) this.#relayout();
    else this.#schedule();
  }

  /** The folded state (read by tests and the benchmark). */
  get matrix(): HeatmapModel {
    return this.#matrix;
  }

  #relayout(): void {
    const n = this.#matrix.grid.nodes.length;
    this.#layout = layoutHeatmap(n, Math.max(320, this.root.clientWidth - 16));
    const width = this.#layout.left + n * this.#layout.cell + 8;
    const height = this.#layout.top + n * this.#layout.cell + 8;
    const ratio = window.devicePixelRatio || 1;
    this.#canvas.width = Math.ceil(width * ratio);
    this.#canvas.height = Math.ceil(height * ratio);
    this.#canvas.style.width = `${width}px`;
    this.#canvas.style.height = `${height}px`;
    this.#full = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.paint();
    });
  }

  /** Opens the drill-down of one node pair (the host asks after "probe from this pod to..."). */
  select(src: string, dst: string): void {
    this.#open(this.#matrix.detail(src, dst));
  }

  /** Opens a cell's drill-down and remembers it across a reload. */
  #open(detail: CellDetail): void {
    this.#selected = [detail.src, detail.dst];
    this.actions.saveState({ selected: this.#selected });
    this.#renderDetail(detail);
  }

  /** Paints the whole grid now and returns the milliseconds it took (benchmarks and tests call it). */
  repaintAll(): number {
    this.#full = true;
    return this.paint();
  }

  /** The grid and the cursor only: the drill-down stays as it is (a click on its buttons must not lose its target). */
  #repaintGrid(): void {
    this.#full = true;
    this.paint(false);
  }

  /** Paints now: everything after a relayout or theme change, else only the cells that changed. */
  paint(detail = true): number {
    performance.mark("fn-matrix-start");
    const ctx = this.#canvas.getContext("2d")!;
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const palette = readPalette();
    if (this.#full) paintHeatmap(ctx, this.#matrix.grid, palette, this.#layout);
    else if (this.#pending.size > 0) paintHeatmap(ctx, this.#matrix.grid, palette, this.#layout, [...this.#pending]);
    const full = this.#full;
    this.#full = false;
    if (this.#cursor && document.activeElement === this.#canvas) {
      const { cell, left, top } = this.#layout;
      ctx.strokeStyle = getComputedStyle(document.body).getPropertyValue("--vscode-focusBorder") || "#007fd4";
      ctx.lineWidth = 2;
      ctx.strokeRect(left + this.#cursor.col * cell + 1, top + this.#cursor.row * cell + 1, cell - 2, cell - 2);
    }
    this.#pending.clear();
    this.#renderStatus();
    if (detail && this.#selected) this.#renderDetail(this.#matrix.detail(...this.#selected));
    performance.mark("fn-matrix-end");
    const measure = performance.measure(full ? "fn-matrix-full" : "fn-matrix-incremental", "fn-matrix-start", "fn-matrix-end");
    if (full) this.actions.rendered(measure.duration);
    return measure.duration;
  }

  #renderStatus(): void {
    const m = this.#matrix;
    const running = m.runId !== undefined && !m.finished;
    this.#verify.toggleAttribute("disabled", running);
    this.#report.toggleAttribute("disabled", m.results().length === 0);
    this.#progress.textContent = m.runId === undefined ? "not run yet" : running ? `probing… ${m.progress.done}/${m.progress.total} pairs` : `run ${m.runId}: ${m.progress.done}/${m.progress.total} pairs`;
    const counts = { ok: 0, flaky: 0, failed: 0, inconclusive: 0, nat: 0 };
    for (const result of m.results()) {
      if (result.verdict in counts) counts[result.verdict as keyof typeof counts]++;
      if (result.problems.includes("nat-violation")) counts.nat++;
    }
    this.#summary.replaceChildren(
      m.error ? h("span", { class: "status error" }, icon("error"), ` ${m.error}`) : "",
      m.results().length === 0 ? "" : `${counts.failed}/${m.results().length} pairs failed (${counts.nat} NAT violations), ${counts.flaky} flaky, ${counts.inconclusive} inconclusive`,
    );
    this.#summary.className = `summary ${counts.failed > 0 || m.error ? "bad" : m.results().length > 0 ? "good" : ""}`;
  }

  #cellFromEvent(event: MouseEvent): CellDetail | undefined {
    const rect = this.#canvas.getBoundingClientRect();
    const hit = cellAt(this.#layout, this.#matrix.grid.nodes.length, event.clientX - rect.left, event.clientY - rect.top);
    if (!hit) return undefined;
    return this.#matrix.detail(this.#matrix.grid.nodes[hit.row]!, this.#matrix.grid.nodes[hit.col]!);
  }

  #hover(event: MouseEvent): void {
    const detail = this.#cellFromEvent(event);
    if (!detail) {
      this.#tooltip.hidden = true;
      return;
    }
    const marks = markNames(detail.marks);
    this.#tooltip.replaceChildren(
      h("strong", {}, `${detail.src} → ${detail.dst}`),
      h("div", {}, `${STATE_NAMES[detail.state]}${marks.length ? ` · ${marks.join(", ")}` : ""} · RTT ${formatRtt(detail.rttMs)} · ${detail.pairs.length} pairs`),
      ...detail.diagnosis.slice(0, 4).map((line) => h("div", { class: "diagnosis" }, icon("lightbulb"), ` ${line}`)),
    );
    const wrap = this.#canvas.parentElement!.getBoundingClientRect();
    this.#tooltip.style.left = `${event.clientX - wrap.left + 12}px`;
    this.#tooltip.style.top = `${event.clientY - wrap.top + 12}px`;
    this.#tooltip.hidden = false;
  }

  /** Arrows move a cursor over the cells (announced through aria-label), Enter or Space drills down. */
  #key(event: KeyboardEvent): void {
    const nodes = this.#matrix.grid.nodes;
    if ((event.key === "Enter" || event.key === " ") && this.#cursor) {
      event.preventDefault();
      this.#open(this.#matrix.detail(nodes[this.#cursor.row]!, nodes[this.#cursor.col]!));
      return;
    }
    const next = moveCursor(this.#cursor, event.key, nodes.length);
    if (!next) return;
    event.preventDefault();
    this.#cursor = next;
    const detail = this.#matrix.detail(nodes[next.row]!, nodes[next.col]!);
    this.#canvas.setAttribute("aria-label", `${detail.src} → ${detail.dst}: ${STATE_NAMES[detail.state]}, ${detail.pairs.length} pairs. Enter shows them.`);
    this.#repaintGrid();
  }

  /** Drill-down: the cell's pod pairs with verdict, RTT, what the receiver saw, and why it failed. */
  #renderDetail(detail: CellDetail): void {
    const again = button({}, () => this.actions.probePair({ node: detail.src }, { node: detail.dst }), icon("debug-restart"), " Probe this node pair again");
    const rows = [...detail.pairs].sort((a, b) => severity(b) - severity(a)).map((pair) => this.#pairRow(pair));
    this.#detail.replaceChildren(
      h("h2", {}, `${detail.src} → ${detail.dst}`, h("span", { class: `badge state-${STATE_NAMES[detail.state]!.replace(" ", "-")}` }, STATE_NAMES[detail.state]!), again),
      detail.pairs.length === 0
        ? h("p", { class: "muted" }, detail.state === CellState.pending ? "Waiting for results…" : "No pod pairs were probed between these nodes.")
        : h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ...["source pod", "destination pod", "family", "verdict", "RTT p50", "receiver saw", "problems", "diagnosis", "path"].map((t) => h("th", {}, t)))),
            h("tbody", {}, ...rows),
          ),
    );
  }

  #pairRow(pair: PairResult): HTMLTableRowElement {
    const natBad = pair.nat.verdict === "snat-to-node-ip" || pair.nat.verdict === "snat-other";
    const copy = (text: string) => button({ class: "link ip", title: "Copy IP" }, () => this.actions.copy(text), text);
    return h(
      "tr",
      { class: `verdict-${pair.verdict}` },
      h("td", {}, pair.pair.src.pod, " ", copy(pair.pair.src.ip)),
      h("td", {}, pair.pair.dst.pod, " ", copy(pair.pair.dst.ip)),
      h("td", {}, pair.pair.family),
      h("td", {}, pair.verdict, pair.attempts > 1 ? ` (${pair.attempts} attempts)` : ""),
      h("td", {}, formatRtt(pair.rtt?.p50Ms)),
      h("td", { class: natBad ? "bad" : "" }, pair.nat.observedSrc ?? "–", natBad ? ` (expected ${pair.nat.expectedSrc})` : ""),
      h("td", {}, pair.problems.join(", ") || "–"),
      h("td", {}, [...pair.diagnosis.map((d) => d.message), ...(pair.error ? [pair.error] : [])].join("; ") || "–"),
      h("td", {}, pair.verdict === "ok" ? "–" : this.#showPathButton(pair)),
    );
  }

  #showPathButton(pair: PairResult): HTMLButtonElement {
    return button({ class: "link show-path", title: "Draw this pair's path in the topology" }, () => this.actions.showPath(pair.pair.id), icon("debug-step-over"), " show");
  }
}

function severity(pair: PairResult): number {
  return { failed: 4, inconclusive: 3, flaky: 2, ok: 1, excluded: 0 }[pair.verdict];
}
