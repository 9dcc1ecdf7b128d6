// What may import what, checked by `npm run check:deps` (scripts/check-deps.mjs) in the README's test command.
// docs/design.md draws the same map. Tests (*.test.ts, test-support/) may import anything.
const TESTS = "(\\.test\\.ts|\\.test-util\\.ts|/test-support/)";
const core = (folder) => `^packages/core/src/${folder}/`;
const agent = (folder) => `^apps/agent/src/${folder}/`;
const ext = (folder) => `^apps/vscode/src/${folder}/`;

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const forbidden = [
  {
    name: "no-cycles",
    severity: "error",
    comment: "No import cycle between files (folder cycles are checked by scripts/check-deps.mjs).",
    from: { pathNot: TESTS },
    to: { circular: true },
  },
  {
    name: "core-is-pure",
    severity: "error",
    comment: "The core runs unchanged on Node, Deno and Bun: no Node built-ins, no app code.",
    from: { path: "^packages/core/src/", pathNot: TESTS },
    to: { dependencyTypes: ["core"] },
  },
  {
    name: "core-does-not-import-apps",
    severity: "error",
    from: { path: "^packages/core/" },
    to: { path: "^apps/" },
  },
  // The core's layers: ip <- cidr <- ipam | routes | probe | trace <- schema.
  { name: "core-ip-is-the-bottom", severity: "error", from: { path: core("ip") }, to: { path: `^packages/core/src/(?!ip/|errors\\.ts)` } },
  {
    name: "core-cidr-only-on-ip",
    severity: "error",
    from: { path: core("cidr") },
    to: { path: `^packages/core/src/(?!ip/|cidr/|errors\\.ts)` },
  },
  // The agent: linux/ is the bottom (only it touches a kernel); the lab sits on probe, never the reverse; cli/ is the top.
  {
    name: "agent-linux-is-the-bottom",
    severity: "error",
    from: { path: agent("linux"), pathNot: TESTS },
    to: { path: "^apps/agent/src/(?!linux/)" },
  },
  {
    name: "agent-nothing-imports-cli",
    severity: "error",
    from: { path: "^apps/agent/src/(?!cli/|main\\.ts)", pathNot: TESTS },
    to: { path: agent("cli") },
  },
  {
    name: "agent-only-cli-imports-lab",
    severity: "error",
    comment: "The lab is a product of its own built on the agent's parts; nothing but the CLI depends on it.",
    from: { path: "^apps/agent/src/(?!cli/|lab/)", pathNot: TESTS },
    to: { path: agent("lab") },
  },
  {
    name: "agent-src-does-not-import-tests",
    severity: "error",
    from: { path: "^apps/agent/src/", pathNot: TESTS },
    to: { path: `(${TESTS}|^test/|^apps/agent/test-support/)` },
  },
  // The extension: the webview runs in a browser, the model is plain data; only the host side sees `vscode`.
  {
    name: "ext-webview-no-vscode-no-node",
    severity: "error",
    from: { path: ext("webview"), pathNot: TESTS },
    to: { path: "^(vscode$|node:)|^apps/vscode/src/(?!webview/|model/|protocol\\.ts)" },
  },
  {
    name: "ext-model-is-plain",
    severity: "error",
    from: { path: ext("model"), pathNot: TESTS },
    to: { path: "^vscode$|^apps/vscode/src/(?!model/|protocol\\.ts)" },
  },
  {
    name: "ext-src-does-not-import-tests",
    severity: "error",
    from: { path: "^apps/vscode/src/", pathNot: TESTS },
    to: { path: `(${TESTS}|^test/|^apps/vscode/test-support/)` },
  },
];

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(dist|node_modules|media|fixtures)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.depcruise.json" },
    enhancedResolveOptions: { extensions: [".ts", ".mjs", ".js"], conditionNames: ["import", "types", "default"] },
  },
};
