import type { CheckReport } from "./checker.ts";

/**
 * The check matrix as text: a row per source pod, a column per destination pod; a cell is "ok" per family
 * ("ok" or "ok/ok" for dual-stack) or the failed part ("icmp", "tcp", "nat"), then one line per failure.
 */
export function renderMatrix(report: CheckReport): string {
  const names = report.pods.map((pod) => pod.name);
  const cell = (from: string, to: string): string => {
    if (from === to) return "-";
    const pairs = report.pairs.filter((pair) => pair.from === from && pair.to === to);
    if (pairs.length === 0) return "?";
    return pairs
      .sort((a, b) => a.family.localeCompare(b.family))
      .map((pair) => (pair.ok ? "ok" : !pair.icmp && !pair.tcp ? "FAIL" : !pair.icmp ? "icmp" : !pair.tcp ? "tcp" : "nat"))
      .join("/");
  };
  const rows = [["from \\ to", ...names], ...names.map((from) => [from, ...names.map((to) => cell(from, to))])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const lines = rows.map((row) => row.map((text, column) => text.padEnd(widths[column]!)).join("  ").trimEnd());
  const failures = report.pairs.filter((pair) => !pair.ok);
  const total = report.pairs.length;
  lines.push("");
  lines.push(
    failures.length === 0
      ? `all ${total} pod pairs reachable over ICMP and TCP, every source address preserved (no NAT) in ${Math.round(report.durationMs)} ms`
      : `${failures.length} of ${total} pod pairs failed:`,
  );
  for (const pair of failures) lines.push(`  ${pair.from} -> ${pair.to} (${pair.dst}): ${pair.error ?? "failed"}`);
  return lines.join("\n") + "\n";
}
