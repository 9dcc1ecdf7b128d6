#!/usr/bin/env node
// The import guard: the rules of .dependency-cruiser.cjs (file cycles, layers) plus no cycle between folders.
// Exit 1 listing every violation; prints the counts either way.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { cruise } from "dependency-cruiser";
import extractTsConfig from "dependency-cruiser/config-utl/extract-ts-config";

// Usage: node scripts/check-deps.mjs [ROOT] (ROOT: a checkout, default the current folder)
process.chdir(process.argv[2] ?? ".");
const require = createRequire(import.meta.url);
const config = require("../.dependency-cruiser.cjs");
const ROOTS = ["packages/core/src", "apps/agent/src", "apps/vscode/src"].filter((root) => existsSync(root));
const isTest = (path) => /\.test\.ts$|\.test-util\.ts$|\/test-support\//.test(path);

const withTsConfig = existsSync("tsconfig.depcruise.json");
const { tsConfig: _, ...withoutTsConfig } = config.options;
const options = withTsConfig ? config.options : withoutTsConfig;
const { output } = await cruise(
  ROOTS,
  { ...options, validate: true, ruleSet: { forbidden: config.forbidden } },
  undefined,
  withTsConfig ? { tsConfig: extractTsConfig("tsconfig.depcruise.json") } : {},
);

const problems = output.summary.violations.map(
  (v) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name ?? c).join(" -> ")})` : ""}`,
);

// Folder cycles: collapse product files to their top folder under src/ (a file at src/ level stays itself) and look
// for strongly connected folders.
const folderOf = (path) => {
  const root = ROOTS.find((r) => path.startsWith(`${r}/`));
  const [top, ...rest] = path.slice(root.length + 1).split("/");
  return rest.length === 0 ? path : `${root}/${top}`;
};
const edges = new Map();
for (const module of output.modules) {
  if (isTest(module.source) || !ROOTS.some((root) => module.source.startsWith(root))) continue;
  const from = folderOf(module.source);
  for (const dependency of module.dependencies) {
    if (isTest(dependency.resolved) || !ROOTS.some((root) => dependency.resolved.startsWith(`${root}/`))) continue;
    const to = folderOf(dependency.resolved);
    if (to === from) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    if (!edges.get(from).has(to)) edges.get(from).set(to, `${module.source} -> ${dependency.resolved}`);
  }
}
const folderCycles = stronglyConnected(edges).filter((component) => component.length > 1);
for (const component of folderCycles) {
  const inside = new Set(component);
  const why = component.flatMap((from) => [...(edges.get(from) ?? [])].filter(([to]) => inside.has(to)).map(([, via]) => via));
  problems.push(`folder-cycle: ${component.join(" <-> ")}\n    ${why.join("\n    ")}`);
}

const fileCycles = output.summary.violations.filter((v) => v.rule.name === "no-cycles").length;
console.log(
  `check-deps: ${output.summary.totalCruised} modules, ${fileCycles} file cycle(s), ${folderCycles.length} folder cycle(s), ${problems.length} violation(s)`,
);
for (const problem of problems) console.log(`  ${problem}`);
process.exit(problems.length === 0 ? 0 : 1);

/** Tarjan's strongly connected components over a Map<node, Map<node, _>>. */
function stronglyConnected(graph) {
  const index = new Map(), low = new Map(), stack = [], onStack = new Set(), components = [];
  let next = 0;
  const nodes = new Set([...graph.keys(), ...[...graph.values()].flatMap((m) => [...m.keys()])]);
  const visit = (node) => {
    index.set(node, next); low.set(node, next); next++;
    stack.push(node); onStack.add(node);
    for (const to of graph.get(node)?.keys() ?? []) {
      if (!index.has(to)) { visit(to); low.set(node, Math.min(low.get(node), low.get(to))); }
      else if (onStack.has(to)) low.set(node, Math.min(low.get(node), index.get(to)));
    }
    if (low.get(node) === index.get(node)) {
      const component = [];
      let member;
      do { member = stack.pop(); onStack.delete(member); component.push(member); } while (member !== node);
      components.push(component.sort());
    }
  };
  for (const node of [...nodes].sort()) if (!index.has(node)) visit(node);
  return components;
}
