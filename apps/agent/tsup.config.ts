import { defineConfig } from "tsup";

export default defineConfig({
  // probe-responder: the light entry every lab pod and DaemonSet pod runs.
  entry: { main: "src/main.ts", "probe-responder": "src/probe/responder-main.ts" },
  format: ["esm"],
  sourcemap: true,
  // Empty dist/ before a build, except the CNI plugin binary (scripts/build-cni.mjs): a rebuild of the bundle must not
  // take the plugin away from the lab and tests meanwhile (it is rebuilt after tsup by `npm run build`).
  clean: ["!cni", "!cni/**"],
  target: "node24",
  platform: "node",
  // The core is bundled in; npm dependencies stay external and resolve from node_modules.
  noExternal: ["@flatnet/core"],
  // Keep "node:" on imports: node:sqlite exists only with the prefix (tsup strips it by default).
  removeNodeProtocol: false,
  banner: { js: "#!/usr/bin/env node" },
});
