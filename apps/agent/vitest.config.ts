import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const countsDir = process.env.FLATNET_COUNTS_DIR;

export default defineConfig({
  resolve: {
    // Tests run against the core's sources, so no build is needed between edits.
    alias: { "@flatnet/core": fileURLToPath(new URL("../../packages/core/src/index.ts", import.meta.url)) },
  },
  test: {
    include: ["src/**/*.test.ts"],
    // A hang guard, not a speed bound: some tests start the built CLI or a kernel tool many times over.
    testTimeout: 60_000,
    // scripts/test-all.sh sums every runner's JSON report into one closing line.
    reporters: countsDir ? ["default", ["json", { outputFile: join(countsDir, "agent.json") }]] : ["default"],
  },
});
