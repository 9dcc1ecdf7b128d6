import { fileURLToPath } from "node:url";
import { defineConfig } from "tsup";

// Bundle the core from its sources, as the tests do, so the bundle never picks up a stale packages/core/dist.
const core = fileURLToPath(new URL("../../packages/core/src/index.ts", import.meta.url));
const esbuildOptions = (options: { alias?: Record<string, string> }) => {
  options.alias = { ...options.alias, "@flatnet/core": core };
};

// Two bundles: the extension host (CJS, Node; bundles the ESM-only client-node) and the webview (IIFE, browser).
export default defineConfig([
  {
    entry: { extension: "src/extension.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    platform: "node",
    target: "node20",
    sourcemap: true,
    // Everything but the vscode module is bundled (client-node is ESM-only; the host loads CJS).
    noExternal: [/^(?!vscode$)/],
    external: ["vscode"],
    minify: true,
    esbuildOptions,
  },
  {
    entry: { "webview/main": "src/webview/main.ts" },
    format: ["iife"],
    outExtension: () => ({ js: ".js" }),
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    noExternal: [/.*/],
    minify: true,
    esbuildOptions,
  },
]);
