// Shared by the lab benchmarks: run the built flatnet CLI, start/stop helper processes by PID, medians, result rows.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const flatnetMain = join(root, "apps/agent/dist/main.js");

/** Runs `flatnet <args>` with this Node (v24); throws with its stderr on failure. */
export function flatnet(args, { quiet = true } = {}) {
  const started = performance.now();
  const result = spawnSync(process.execPath, [flatnetMain, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  const ms = performance.now() - started;
  if (result.status !== 0) {
    throw new Error(`flatnet ${args.join(" ")} exited ${result.status}: ${result.stderr}${result.stdout}`);
  }
  if (!quiet) process.stderr.write(result.stdout);
  return { stdout: result.stdout, ms };
}

export function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 << 20, ...options });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/** Starts a background process in a namespace; returns a stop() that kills it by PID. */
export function startInNetns(netns, command, args) {
  const child = spawn("ip", ["netns", "exec", netns, command, ...args], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export async function waitUntil(condition, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (let interval = 5; ; interval = Math.min(interval * 2, 100)) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
};

/** Prints the rows as a markdown table and writes them to bench/results/<name>.json. */
export function report(name, rows) {
  const fmt = (v) => (v === undefined ? "" : typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : String(v));
  process.stdout.write("| bench | metric | value | baseline | ratio | target | pass |\n|---|---|---|---|---|---|---|\n");
  for (const r of rows) {
    process.stdout.write(
      `| ${r.bench} | ${r.metric} | ${fmt(r.value)} ${r.unit} | ${r.baseline === undefined ? "" : `${fmt(r.baseline)} ${r.unit}`} | ${r.ratio === undefined ? "" : `${fmt(r.ratio)}x`} | ${r.target} | ${r.pass ? "yes" : "NO"} |\n`,
    );
  }
  mkdirSync(join(root, "bench/results"), { recursive: true });
  writeFileSync(join(root, "bench/results", `${name}.json`), JSON.stringify(rows, null, 2) + "\n");
}

export const isRoot = () => process.getuid?.() === 0;
