import { join } from "node:path";
import { defineConfig } from "vitest/config";

const countsDir = process.env.FLATNET_COUNTS_DIR;

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    // scripts/test-all.sh sums every runner's JSON report into one closing line.
    reporters: countsDir ? ["default", ["json", { outputFile: join(countsDir, "core.json") }]] : ["default"],
  },
});
