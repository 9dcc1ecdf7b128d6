import { defineConfig } from "tsup";

// Two bundles: the extension host (CJS, Node; bundles the ESM-only client-node) and the webview (IIFE, browser).
export default defineConfig([
  {
    entry: { extension: "src/extension.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    platform: "node",
    target: "node20",
    sourcemap: true,
    clean: true,
    // Everything but the vscode module is bundled (client-node is ESM-only; the host loads CJS).
    noExternal: [/^(?!vscode$)/],
    external: ["vscode"],
    minify: true,
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
  },
]);
