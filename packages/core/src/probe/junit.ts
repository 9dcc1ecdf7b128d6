import type { PairResult, ProbeReport } from "./types.ts";

/**
 * JUnit XML of a report for CI: one testsuite per family and path (same-node / cross-node), one testcase
 * per pair; `failed` is a <failure> carrying the diagnosis, `inconclusive` an <error>, `excluded` <skipped>,
 * `flaky` passes with a note in <system-out>. IPAM ledger findings form one more suite.
 */
export function renderJunit(report: ProbeReport): string {
  const groups = new Map<string, PairResult[]>();
  for (const r of report.results) {
    const key = `${r.pair.family} ${r.pair.path}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const suites: string[] = [];
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  for (const [key, results] of groups) {
    const f = results.filter((r) => r.verdict === "failed").length;
    const e = results.filter((r) => r.verdict === "inconclusive").length;
    const s = results.filter((r) => r.verdict === "excluded").length;
    tests += results.length;
    failures += f;
    errors += e;
    skipped += s;
    const cases = results.map((r) => renderCase(r)).join("\n");
    suites.push(
      `  <testsuite name="${esc(`pod connectivity ${key}`)}" tests="${results.length}" failures="${f}" errors="${e}" skipped="${s}">\n${cases}\n  </testsuite>`,
    );
  }
  if (report.ledger.length > 0) {
    tests += report.ledger.length;
    failures += report.ledger.length;
    const cases = report.ledger
      .map((l) => `    <testcase classname="ipam-ledger" name="${esc(`${l.code} ${l.ip}`)}">\n      <failure message="${esc(l.message)}" type="${esc(l.code)}"/>\n    </testcase>`)
      .join("\n");
    suites.push(`  <testsuite name="ipam ledger" tests="${report.ledger.length}" failures="${report.ledger.length}" errors="0" skipped="0">\n${cases}\n  </testsuite>`);
  }
  const time = (report.summary.durationMs / 1000).toFixed(3);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="flatnet check" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}">`,
    ...suites,
    `</testsuites>`,
    "",
  ].join("\n");
}

function renderCase(r: PairResult): string {
  const p = r.pair;
  const head = `    <testcase classname="${esc(`${p.src.node}->${p.dst.node}`)}" name="${esc(`${p.src.pod} (${p.src.ip}) -> ${p.dst.pod} (${p.dst.ip})`)}"${r.rtt ? ` time="${(r.rtt.p50Ms / 1000).toFixed(6)}"` : ""}>`;
  const why = [r.error, ...r.diagnosis.map((d) => d.message)].filter((x): x is string => !!x).join("\n");
  let body = "";
  if (r.verdict === "failed") body = `\n      <failure message="${esc(r.problems.join(", "))}" type="${esc(r.problems[0] ?? "failed")}">${esc(why)}</failure>\n    `;
  else if (r.verdict === "inconclusive") body = `\n      <error message="control path failed" type="inconclusive">${esc(why)}</error>\n    `;
  else if (r.verdict === "excluded") body = `\n      <skipped message="${esc(r.error ?? "excluded")}"/>\n    `;
  else if (r.verdict === "flaky") body = `\n      <system-out>${esc(`flaky: passed on attempt ${r.attempts}`)}</system-out>\n    `;
  return `${head}${body}</testcase>`;
}

function esc(text: string): string {
  // XML 1.0 forbids most control characters even when escaped; drop them.
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
