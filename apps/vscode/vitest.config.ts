import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const countsDir = process.env.FLATNET_COUNTS_DIR;

export default defineConfig({
  resolve: {
    alias: {
      // Tests run against the core's sources, so no build is needed between edits.
      "@flatnet/core": fileURLToPath(new URL("../../packages/core/src/index.ts", import.meta.url)),
      // Unit tests of the thin adapters run outside VS Code against a small stand-in.
      vscode: fileURLToPath(new URL("./test-support/vscode-stub.ts", import.meta.url)),
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    // scripts/test-all.sh sums every runner's JSON report into one closing line.
    reporters: countsDir ? ["default", ["json", { outputFile: join(countsDir, "vscode.json") }]] : ["default"],
  },
});
