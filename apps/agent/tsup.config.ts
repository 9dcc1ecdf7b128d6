import { defineConfig } from "tsup";

export default defineConfig({
  entry: { main: "src/main.ts" },
  format: ["esm"],
  sourcemap: true,
  clean: true,
  target: "node24",
  platform: "node",
  // The core is bundled in; npm dependencies stay external and resolve from node_modules.
  noExternal: ["@flatnet/core"],
  banner: { js: "#!/usr/bin/env node" },
});
