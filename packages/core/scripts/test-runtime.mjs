#!/usr/bin/env node
// Runs core's test files on another runtime (bun | deno) and, when FLATNET_COUNTS_DIR is set, writes the runner's
// { passed, failed, skipped } there (from its JUnit report) for scripts/count-results.mjs. Exits with the runner's code.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const runtime = process.argv[2];
const pkg = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(pkg, "../../node_modules/.bin", name);
const scratch = mkdtempSync(join(tmpdir(), "flatnet-core-tests-"));
const junit = join(scratch, "junit.xml");
const commands = {
  // bun maps `import ... from "vitest"` to bun:test itself
  bun: [bin("bun"), ["test", "--reporter=junit", `--reporter-outfile=${junit}`, "./src"]],
  // deno.json maps "vitest" to test/portability/vitest-shim.ts; jest's expect reads NODE_ENV and CI
  deno: [bin("deno"), ["test", "--no-check", "--allow-env", `--junit-path=${junit}`, "src/"]],
};
if (!(runtime in commands)) {
  process.stderr.write(`test-runtime: runtime ${JSON.stringify(runtime)} is not supported; use bun or deno\n`);
  process.exit(2);
}
const [command, args] = commands[runtime];
const run = spawnSync(command, args, { cwd: pkg, stdio: "inherit" });
let status = run.status ?? 1;
if (run.error) process.stderr.write(`test-runtime: cannot run ${command}: ${run.error.message}\n`);

const countsDir = process.env.FLATNET_COUNTS_DIR;
if (countsDir) {
  let xml = "";
  try {
    xml = readFileSync(junit, "utf8");
  } catch {
    status ||= 1;
  }
  const cases = xml.match(/<testcase\b[\s\S]*?(?:\/>|<\/testcase>)/g) ?? [];
  const failed = cases.filter((c) => /<(failure|error)\b/.test(c)).length;
  const skipped = cases.filter((c) => /<skipped\b/.test(c)).length;
  const counts = { runner: `core-${runtime}`, passed: cases.length - failed - skipped, failed: failed || (status === 0 ? 0 : 1), skipped };
  writeFileSync(join(countsDir, `core-${runtime}.json`), `${JSON.stringify(counts)}\n`);
}
rmSync(scratch, { recursive: true, force: true });
process.exit(status);
