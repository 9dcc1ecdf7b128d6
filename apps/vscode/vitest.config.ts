import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run against the core's sources, so no build is needed between edits.
    alias: {
      "@flatnet/core": fileURLToPath(new URL("../../packages/core/src/index.ts", import.meta.url)),
      // Unit tests of the thin adapters run outside VS Code against a small stand-in.
      vscode: fileURLToPath(new URL("./src/test-support/vscode-stub.ts", import.meta.url)),
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
  },
});
