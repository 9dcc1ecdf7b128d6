// Runs every benchmark in bench/ one after another (they share 2 cores), then prints one table of all results.
// Each bench writes bench/results/<name>.json: [{ bench, metric, value, unit, baseline, ratio, target, pass }].
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const results = join(here, "results");
const only = process.argv.slice(2);
rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });

const benches = readdirSync(here)
  .filter((f) => /\.bench\.(mjs|ts)$/.test(f))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
const failures = [];
for (const file of benches) {
  process.stdout.write(`\n## ${file}\n\n`);
  const cmd = file.endsWith(".ts") ? ["npx", ["tsx", join(here, file)]] : [process.execPath, [join(here, file)]];
  const run = spawnSync(cmd[0], cmd[1], { stdio: "inherit", cwd: join(here, "..") });
  if (run.status !== 0) failures.push(file);
}

const fmt = (v) => (v === undefined || v === null ? "" : typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3)) : String(v));
const rows = [];
if (existsSync(results)) {
  for (const f of readdirSync(results).filter((f) => f.endsWith(".json")).sort()) {
    rows.push(...JSON.parse(readFileSync(join(results, f), "utf8")));
  }
}
process.stdout.write("\n# flatnet benchmarks\n\n| bench | metric | value | baseline | ratio | target | pass |\n|---|---|---|---|---|---|---|\n");
for (const r of rows) {
  const unit = r.unit ? ` ${r.unit}` : "";
  process.stdout.write(`| ${r.bench} | ${r.metric} | ${fmt(r.value)}${unit} | ${r.baseline === undefined ? "" : fmt(r.baseline) + unit} | ${r.ratio === undefined ? "" : fmt(r.ratio) + "x"} | ${r.target ?? ""} | ${r.pass === undefined ? "" : r.pass ? "yes" : "NO"} |\n`);
}
if (failures.length) {
  process.stdout.write(`\nbenchmarks that failed to run: ${failures.join(", ")}\n`);
  process.exitCode = 1;
}
