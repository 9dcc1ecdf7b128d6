/**
 * Paints a MatrixGrid on a canvas: one square per (source node, destination node), colour = verdict or RTT,
 * letters (N = NAT, M = MTU, L = loss) when cells are big enough, a dot when they are not.
 * Cells are batched by colour into one path each, so 250,000 cells cost a few fills.
 */
import { CellMark, CellState, type MatrixGrid } from "../model/matrix.ts";
import { type Palette, rttColor, rttScale } from "./palette.ts";

export interface HeatmapLayout {
  cell: number;
  /** Space for row labels (left) and column labels (top). */
  left: number;
  top: number;
  labels: boolean;
}

const RTT_BUCKETS = 16;

export function layoutHeatmap(nodeCount: number, availableWidth: number): HeatmapLayout {
  const labels = nodeCount <= 60;
  const left = labels ? 96 : 8;
  const top = labels ? 96 : 8;
  const cell = Math.max(2, Math.min(40, Math.floor((availableWidth - left - 8) / Math.max(1, nodeCount))));
  return { cell, left, top, labels: labels && cell >= 10 };
}

/** The cell under a canvas point, or undefined outside the grid. */
export function cellAt(layout: HeatmapLayout, nodeCount: number, x: number, y: number): { row: number; col: number } | undefined {
  const col = Math.floor((x - layout.left) / layout.cell);
  const row = Math.floor((y - layout.top) / layout.cell);
  if (x < layout.left || y < layout.top || col >= nodeCount || row >= nodeCount) return undefined;
  return { row, col };
}

/** Arrow keys move the keyboard cursor one cell, Home/End to the row's ends; undefined for other keys. */
export function moveCursor(cursor: { row: number; col: number } | undefined, key: string, nodeCount: number): { row: number; col: number } | undefined {
  if (nodeCount === 0) return undefined;
  const at = cursor ?? { row: 0, col: 0 };
  const clamp = (n: number) => Math.max(0, Math.min(nodeCount - 1, n));
  switch (key) {
    case "ArrowUp":
    case "ArrowDown":
      return cursor ? { row: clamp(at.row + (key === "ArrowUp" ? -1 : 1)), col: at.col } : at;
    case "ArrowLeft":
    case "ArrowRight":
      return cursor ? { row: at.row, col: clamp(at.col + (key === "ArrowLeft" ? -1 : 1)) } : at;
    case "Home":
      return { row: at.row, col: 0 };
    case "End":
      return { row: at.row, col: nodeCount - 1 };
    default:
      return undefined;
  }
}

function fillFor(palette: Palette, state: number, rtt: number, rttShades: string[]): string | undefined {
  switch (state) {
    case CellState.none:
      return undefined;
    case CellState.pending:
      return palette.pending;
    case CellState.excluded:
      return palette.excluded;
    case CellState.ok:
      return rttShades[Number.isNaN(rtt) ? 0 : Math.round(rttScale(rtt) * (RTT_BUCKETS - 1))];
    case CellState.flaky:
      return palette.flaky;
    case CellState.inconclusive:
      return palette.inconclusive;
    default:
      return palette.failed;
  }
}

function markText(marks: number): string {
  return `${marks & CellMark.nat ? "N" : ""}${marks & CellMark.mtu ? "M" : ""}${marks & CellMark.loss ? "L" : ""}`;
}

/** Paints all cells, or only `cells` (indexes) for an incremental update while results stream in. */
export function paintHeatmap(ctx: CanvasRenderingContext2D, grid: MatrixGrid, palette: Palette, layout: HeatmapLayout, cells?: readonly number[]): void {
  const n = grid.nodes.length;
  const { cell, left, top } = layout;
  const gap = cell >= 6 ? 1 : 0;
  const rttShades = Array.from({ length: RTT_BUCKETS }, (_, i) => rttColor(palette, 10 ** ((i / (RTT_BUCKETS - 1)) * 2 - 1)));
  const batches = new Map<string, Path2D>();
  const clear = new Path2D();
  const marked: number[] = [];
  const visit = (index: number) => {
    const x = left + (index % n) * cell;
    const y = top + Math.floor(index / n) * cell;
    clear.rect(x, y, cell, cell);
    const fill = fillFor(palette, grid.state[index]!, grid.rttMs[index]!, rttShades);
    if (fill === undefined) return;
    let path = batches.get(fill);
    if (!path) batches.set(fill, (path = new Path2D()));
    path.rect(x, y, cell - gap, cell - gap);
    if (grid.marks[index]) marked.push(index);
  };
  if (cells) for (const index of cells) visit(index);
  else for (let index = 0; index < n * n; index++) visit(index);

  ctx.fillStyle = palette.background;
  if (cells) ctx.fill(clear);
  else ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  for (const [fill, path] of batches) {
    ctx.fillStyle = fill;
    ctx.fill(path);
  }
  if (palette.highContrast && palette.border && cell >= 4) {
    ctx.strokeStyle = palette.border;
    ctx.lineWidth = 1;
    for (const path of batches.values()) ctx.stroke(path);
  }
  ctx.fillStyle = palette.mark;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  const fontSize = Math.floor(cell * 0.5);
  if (cell >= 12) ctx.font = `bold ${fontSize}px ${palette.fontFamily}`;
  for (const index of marked) {
    const x = left + (index % n) * cell;
    const y = top + Math.floor(index / n) * cell;
    if (cell >= 12) {
      ctx.fillText(markText(grid.marks[index]!), x + (cell - gap) / 2, y + (cell - gap) / 2, cell - 2);
    } else if (cell >= 4) {
      ctx.fillRect(x + cell / 2 - 1, y + cell / 2 - 1, 2, 2);
    }
  }
  if (!cells && layout.labels) paintLabels(ctx, grid, palette, layout);
}

function paintLabels(ctx: CanvasRenderingContext2D, grid: MatrixGrid, palette: Palette, layout: HeatmapLayout): void {
  const { cell, left, top } = layout;
  ctx.fillStyle = palette.foreground;
  ctx.font = `${Math.min(12, cell - 2)}px ${palette.fontFamily}`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  grid.nodes.forEach((name, i) => ctx.fillText(name, left - 4, top + i * cell + cell / 2, left - 8));
  ctx.save();
  ctx.textAlign = "left";
  grid.nodes.forEach((name, i) => {
    ctx.setTransform(1, 0, 0, 1, left + i * cell + cell / 2, top - 4);
    ctx.rotate(-Math.PI / 3);
    ctx.fillText(name, 0, 0, top * 1.1);
  });
  ctx.restore();
}
