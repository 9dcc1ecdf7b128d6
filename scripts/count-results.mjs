// Sums vitest JSON reports (and bun/deno counts files) into the one closing line CI reads: "N passed, N failed".
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const [dir, failedSteps = "0"] = process.argv.slice(2);
let passed = 0, failed = 0, skipped = 0;
for (const file of readdirSync(dir)) {
  const data = JSON.parse(readFileSync(join(dir, file), "utf8"));
  if (typeof data.numPassedTests === "number") {
    passed += data.numPassedTests;
    failed += data.numFailedTests;
    skipped += (data.numPendingTests ?? 0) + (data.numTodoTests ?? 0);
  } else if (typeof data.passed === "number") {
    passed += data.passed; failed += data.failed; skipped += data.skipped ?? 0;
  }
}
// A step that failed without a report (a crash, a typecheck error) still counts as a failure.
if (failed === 0 && Number(failedSteps) > 0) failed = Number(failedSteps);
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
