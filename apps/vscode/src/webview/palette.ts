/**
 * Heatmap colours from the active theme's CSS variables (VS Code sets `--vscode-*` on the body and swaps them
 * on theme change), resolved to RGB so the canvas can blend RTT shades.
 */
export interface Palette {
  background: string;
  foreground: string;
  muted: string;
  border: string | undefined;
  ok: [number, number, number];
  slow: [number, number, number];
  flaky: string;
  failed: string;
  inconclusive: string;
  pending: string;
  excluded: string;
  mark: string;
  /** High-contrast themes outline every cell. */
  highContrast: boolean;
  fontFamily: string;
}

const FALLBACK: Record<string, string> = {
  "--vscode-editor-background": "#1e1e1e",
  "--vscode-foreground": "#cccccc",
  "--vscode-disabledForeground": "#808080",
  "--vscode-charts-green": "#89d185",
  "--vscode-charts-yellow": "#cca700",
  "--vscode-charts-orange": "#d18616",
  "--vscode-charts-red": "#f14c4c",
  "--vscode-charts-blue": "#3794ff",
  "--vscode-charts-purple": "#b180d7",
  "--vscode-editorWidget-border": "#454545",
};

function cssVariable(style: CSSStyleDeclaration, name: string): string {
  return style.getPropertyValue(name).trim() || FALLBACK[name] || "#808080";
}

/** Resolves any CSS colour to [r, g, b] via a 1x1 canvas (handles #rgb, #rrggbbaa, rgb(), names). */
function toRgb(ctx: CanvasRenderingContext2D, color: string): [number, number, number] {
  ctx.clearRect(0, 0, 1, 1);
  ctx.fillStyle = "#000";
  ctx.fillStyle = color;
  ctx.fillRect(0, 0, 1, 1);
  const data = ctx.getImageData(0, 0, 1, 1).data;
  return [data[0]!, data[1]!, data[2]!];
}

export function readPalette(root: HTMLElement = document.body): Palette {
  const style = getComputedStyle(root);
  const probe = document.createElement("canvas").getContext("2d", { willReadFrequently: true })!;
  return {
    background: cssVariable(style, "--vscode-editor-background"),
    foreground: cssVariable(style, "--vscode-foreground"),
    muted: cssVariable(style, "--vscode-disabledForeground"),
    border: style.getPropertyValue("--vscode-contrastBorder").trim() || undefined,
    ok: toRgb(probe, cssVariable(style, "--vscode-charts-green")),
    slow: toRgb(probe, cssVariable(style, "--vscode-charts-yellow")),
    flaky: cssVariable(style, "--vscode-charts-orange"),
    failed: cssVariable(style, "--vscode-charts-red"),
    inconclusive: cssVariable(style, "--vscode-charts-purple"),
    pending: cssVariable(style, "--vscode-editorWidget-border"),
    excluded: cssVariable(style, "--vscode-disabledForeground"),
    mark: cssVariable(style, "--vscode-editor-background"),
    highContrast: root.classList.contains("vscode-high-contrast") || root.classList.contains("vscode-high-contrast-light"),
    fontFamily: style.getPropertyValue("--vscode-font-family").trim() || "sans-serif",
  };
}

/** Where an RTT sits between 0.1 ms (0) and 10 ms (1), on a log scale (sub-ms differences stay visible). */
export function rttScale(rttMs: number): number {
  return Math.min(1, Math.max(0, (Math.log10(Math.max(rttMs, 0.1)) + 1) / 2));
}

/** RTT shade: green at <= 0.1 ms to yellow at >= 10 ms. */
export function rttColor(palette: Palette, rttMs: number): string {
  const t = Number.isNaN(rttMs) ? 0 : rttScale(rttMs);
  const [r1, g1, b1] = palette.ok;
  const [r2, g2, b2] = palette.slow;
  return `rgb(${Math.round(r1 + (r2 - r1) * t)},${Math.round(g1 + (g2 - g1) * t)},${Math.round(b1 + (b2 - b1) * t)})`;
}
