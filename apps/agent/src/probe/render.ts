import { buildProbeMatrix, type Diagnosis, type MatrixCell, type PairResult, type PairVerdict, type ProbeReport, type TraceHop } from "@flatnet/core";

// Terminal rendering of a report: a node x node (or pod x pod) matrix, the broken pairs with their diagnosis,
// and the one-line summary. Colour only when asked (a TTY without NO_COLOR).

const GLYPH: Record<PairVerdict, string> = { ok: "✓", flaky: "~", failed: "✗", inconclusive: "?", excluded: "-" };
const COLOUR: Record<PairVerdict, number> = { ok: 32, flaky: 33, failed: 31, inconclusive: 35, excluded: 90 };

export interface RenderOptions {
  color: boolean;
  by?: "node" | "pod";
  /** Print each failed pair's hops (the path tracer's walk), not only its findings. */
  explain?: boolean;
}

/** The whole human report: header, matrix, legend, broken pairs with diagnosis, IPAM findings, summary line. */
export function renderReport(report: ProbeReport, options: RenderOptions): string {
  const paint = (code: number, text: string): string => (options.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const endpoints = report.plan.pairs.flatMap((p) => [p.src, p.dst]);
  const pods = new Set(endpoints.filter((e) => e.kind !== "node").map((e) => `${e.namespace ?? ""}/${e.pod}`)).size;
  const nodeEndpoints = new Set(endpoints.filter((e) => e.kind === "node").map((e) => e.node)).size;
  const nodes = new Set(endpoints.map((e) => e.node)).size;
  const by = options.by ?? (pods + nodeEndpoints <= 12 ? "pod" : "node");
  const lines: string[] = [];
  lines.push(
    `flatnet check: ${report.cluster.name} (${nodes} nodes, ${pods} pods${nodeEndpoints > 0 ? `, ${nodeEndpoints} node endpoints` : ""}, ${report.plan.families.join("+") || "no family"}), ${report.plan.mode}: ${report.plan.pairs.length} pairs in ${(report.summary.durationMs / 1000).toFixed(2)} s`,
  );
  lines.push("");
  lines.push(...renderMatrix(report.results, by, paint));
  lines.push(paint(90, `  rows send, columns answer; cell: worst verdict (${Object.entries(GLYPH).map(([v, g]) => `${g} ${v}`).join(", ")}), then the largest p50 RTT in ms; N = NAT violation, M = MTU black hole`));
  const broken = report.results.filter((r) => r.verdict === "failed" || r.verdict === "inconclusive" || r.verdict === "flaky");
  if (broken.length > 0) lines.push("");
  for (const r of broken.slice(0, 200)) lines.push(...renderPair(r, paint, options.explain === true));
  if (broken.length > 200) lines.push(`  ... and ${broken.length - 200} more (see --json)`);
  for (const d of report.nodeDiagnosis) lines.push(paint(35, `NODE     ${d.message}`));
  for (const f of report.ledger) lines.push(paint(31, `IPAM     ${f.message}`));
  lines.push("");
  const passed = report.summary.failed === 0 && report.summary.inconclusive === 0 && report.summary.ledgerFindings === 0;
  lines.push(paint(passed ? 32 : 31, report.summary.line));
  return `${lines.join("\n")}\n`;
}

function renderMatrix(results: readonly PairResult[], by: "node" | "pod", paint: (c: number, t: string) => string): string[] {
  const matrix = buildProbeMatrix(results, by);
  if (matrix.axis.length === 0) return ["  (no pairs)"];
  const cellText = (cell: MatrixCell): [string, number] => {
    if (cell.verdict === undefined) return ["", 90];
    const marks = `${cell.natViolations > 0 ? "N" : ""}${cell.mtuFailures > 0 ? "M" : ""}`;
    const rtt = cell.p50Ms === undefined ? "" : cell.p50Ms < 10 ? cell.p50Ms.toFixed(2) : cell.p50Ms.toFixed(0);
    return [`${GLYPH[cell.verdict]}${marks}${rtt ? ` ${rtt}` : ""}`, COLOUR[cell.verdict]];
  };
  const width = Math.max(9, ...matrix.axis.map((a) => a.length), ...matrix.cells.flat().map((c) => cellText(c)[0].length)) + 1;
  const label = Math.max(...matrix.axis.map((a) => a.length)) + 2;
  const out = [" ".repeat(label) + matrix.axis.map((a) => a.padStart(width)).join("")];
  matrix.axis.forEach((row, i) => {
    const cells = (matrix.cells[i] ?? []).map((cell) => {
      const [text, colour] = cellText(cell);
      return paint(colour, text.padStart(width));
    });
    out.push(`  ${row.padEnd(label - 2)}${cells.join("")}`);
  });
  return out;
}

function renderPair(r: PairResult, paint: (c: number, t: string) => string, explain: boolean): string[] {
  const p = r.pair;
  const head = `${p.src.pod} (${p.src.ip}) -> ${p.dst.pod} (${p.dst.ip}) ${p.family} ${p.path}`;
  if (r.verdict === "flaky") return [paint(33, `FLAKY    ${head}: passed on attempt ${r.attempts}`)];
  const label = r.verdict === "failed" ? "FAILED  " : "INCONCL ";
  const lines = [paint(COLOUR[r.verdict], `${label} ${head}: ${r.problems.join(", ")}`)];
  if (r.error) lines.push(`         ${r.error}`);
  lines.push(...renderFindings(r.diagnosis, "         "));
  if (explain && r.hops !== undefined) lines.push(...renderHops(r.hops, "         "));
  return lines;
}

/** Findings, one per line, each followed by the fix it offers (never run). */
export function renderFindings(findings: readonly Diagnosis[], indent: string): string[] {
  return findings.flatMap((d) => [`${indent}-> ${d.message}`, ...(d.fix === undefined ? [] : [`${indent}   fix: ${d.fix}`])]);
}

/** A traced path: one line per hop, the kernel's decision there, and the findings placed on it. */
export function renderHops(hops: readonly TraceHop[], indent: string): string[] {
  const width = Math.max(...hops.map((h) => h.node.length));
  return hops.map((h) => {
    const q = h.query;
    const asked = q === undefined ? "" : `route get ${q.dst}${q.from ? ` from ${q.from}` : ""}${q.iif ? ` iif ${q.iif}` : q.iifOf ? ` iif <towards ${q.iifOf}>` : ""}: `;
    const mark = h.status === "broken" ? `  BROKEN: ${h.findings.join(", ")}` : h.status === "unknown" ? "  (unknown)" : "";
    return `${indent}${h.direction === "forward" ? "=>" : "<="} ${h.node.padEnd(width)}  ${h.packet.src} -> ${h.packet.dst}  ${asked}${h.decision}${mark}`;
  });
}

/** One-line progress for a TTY: `  123/3540 pairs (2 failed)`. */
export function renderProgress(done: number, total: number, failed: number): string {
  return `\r  ${done}/${total} pairs${failed > 0 ? ` (${failed} failing)` : ""}   `;
}
