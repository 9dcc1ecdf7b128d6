// VS Code extension benchmarks, each against a baseline measured in the same run:
//  1. tree: 500 nodes / 5,000 pods -> first level (cluster + nodes) as TreeItems through the real provider
//     (pure model + problem scan + adapter). Baseline: one structured copy of the same snapshot (the least any
//     consumer pays to receive it). Target: <= 200 ms.
//  2. heatmap: 500 x 500 cells painted by the real webview bundle in headless Chromium, timed with performance
//     marks. Baseline: the same number of single-colour fillRect calls on the same canvas (raw canvas floor).
//     Target: <= 1000 ms.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const app = join(here, "..", "apps", "vscode");
const RUNS = 7;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

type Row = { bench: string; metric: string; value: number; unit: string; baseline: number; ratio: number; target: string; pass: boolean };
const rows: Row[] = [];

async function treeBench(): Promise<void> {
  // Bundle the provider with the vscode stand-in so the real adapter code runs outside VS Code.
  const out = join(here, "results", "vscode-tree-bundle.mjs");
  await build({
    stdin: {
      contents: `export { FlatnetTreeProvider } from "./src/tree-provider.ts";
export { TreeModel } from "./src/model/tree.ts";
export { findInventoryProblems } from "./src/model/problems.ts";
export { makeSyntheticCluster } from "./test-support/synthetic.ts";`,
      resolveDir: app,
      loader: "ts",
    },
    bundle: true,
    format: "esm",
    platform: "node",
    outfile: out,
    alias: { vscode: join(app, "test-support", "vscode-stub.ts"), "@flatnet/core": join(here, "..", "packages", "core", "src", "index.ts") },
    logLevel: "silent",
  });
  const m = await import(out);
  const cluster = m.makeSyntheticCluster({ nodes: 500, podsPerNode: 10 });
  const ours: number[] = [];
  const base: number[] = [];
  let firstLevel = 0;
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    structuredClone(cluster);
    base.push(performance.now() - t);

    t = performance.now();
    const provider = new m.FlatnetTreeProvider();
    provider.setModel(new m.TreeModel([{ cluster, problems: m.findInventoryProblems(cluster) }]));
    const roots = provider.getChildren();
    const items = [...roots, ...provider.getChildren(roots[0])].map((node: unknown) => provider.getTreeItem(node));
    ours.push(performance.now() - t);
    firstLevel = items.length;
  }
  if (firstLevel !== 502) throw new Error(`first level has ${firstLevel} items; expected cluster + Problems + 500 nodes`);
  const value = median(ours);
  const baseline = median(base);
  rows.push({ bench: "vscode", metric: "tree first level, 500 nodes / 5,000 pods", value, unit: "ms", baseline, ratio: value / baseline, target: "<= 200 ms", pass: value <= 200 });
}

async function heatmapBench(): Promise<void> {
  const { buildWebviewBundle, chromiumMissingReason, launchChromium, openWebview } = await import("../apps/vscode/test-support/webview-page.ts");
  const missing = chromiumMissingReason();
  if (missing) {
    console.log(`heatmap bench skipped: ${missing}`);
    return;
  }
  const bundle = await buildWebviewBundle();
  const browser = await launchChromium();
  try {
    const wp = await openWebview(browser, bundle.dir, "matrix", "dark", { width: 2200, height: 1400 });
    const nodes = Array.from({ length: 500 }, (_, i) => ({ name: `node-${i + 1}`, internalIps: [], podCidrs: [], agent: "healthy", ready: true }));
    await wp.post({ v: 1, type: "cluster", cluster: { id: "fixture:bench", name: "bench", source: "fixture", clusterCidrs: [], nodes, pods: [] } });
    await wp.page.waitForFunction(() => (window as any).flatnet.matrix.matrix.grid.nodes.length === 500);
    const timings = await wp.page.evaluate((runs) => {
      const view = (window as any).flatnet.matrix;
      const grid = view.matrix.grid;
      const n = grid.nodes.length;
      // Deterministic mix: mostly ok with varied RTT, some failed/flaky/pending, marks on failures.
      for (let i = 0; i < n * n; i++) {
        const row = Math.floor(i / n);
        const col = i % n;
        grid.state[i] = row === col ? 0 : i % 97 === 0 ? 6 : i % 89 === 0 ? 4 : i % 83 === 0 ? 1 : 3;
        grid.rttMs[i] = 0.05 * (1 + (i % 200));
        grid.marks[i] = grid.state[i] === 6 ? 1 + (i % 7) : 0;
      }
      const canvas = document.querySelector("canvas.heatmap") as HTMLCanvasElement;
      const ctx = canvas.getContext("2d")!;
      const ours: number[] = [];
      const base: number[] = [];
      for (let r = 0; r < runs; r++) {
        performance.mark("fn-bench-base-start");
        ctx.fillStyle = "#1f1f1f";
        ctx.fillRect(0, 0, canvas.width, canvas.height);
        ctx.fillStyle = "#89d185";
        const cell = Math.max(2, Math.floor((canvas.width / (window.devicePixelRatio || 1) - 16) / n));
        for (let i = 0; i < n * n; i++) ctx.fillRect(8 + (i % n) * cell, 8 + Math.floor(i / n) * cell, cell - 1, cell - 1);
        ctx.getImageData(0, 0, 1, 1); // flush the canvas work inside the timed region
        performance.mark("fn-bench-base-end");
        base.push(performance.measure("fn-bench-base", "fn-bench-base-start", "fn-bench-base-end").duration);
        performance.mark("fn-bench-ours-start");
        view.repaintAll();
        ctx.getImageData(0, 0, 1, 1);
        performance.mark("fn-bench-ours-end");
        ours.push(performance.measure("fn-bench-ours", "fn-bench-ours-start", "fn-bench-ours-end").duration);
      }
      return { ours, base };
    }, RUNS);
    const value = median(timings.ours);
    const baseline = median(timings.base);
    rows.push({ bench: "vscode", metric: "heatmap render, 500 x 500 cells (chromium)", value, unit: "ms", baseline, ratio: value / baseline, target: "<= 1000 ms", pass: value <= 1000 });
    await wp.page.screenshot({ path: join(here, "..", "test-results", "vscode", "bench-heatmap-500.png") }).catch(() => {});
  } finally {
    await browser.close();
    bundle.cleanup();
  }
}

await treeBench();
await heatmapBench();
mkdirSync(join(here, "results"), { recursive: true });
writeFileSync(join(here, "results", "vscode.json"), JSON.stringify(rows, null, 2));
const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));
console.log("| bench | metric | value | baseline | ratio | target | pass |\n|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.bench} | ${r.metric} | ${fmt(r.value)} ms | ${fmt(r.baseline)} ms | ${fmt(r.ratio)}x | ${r.target} | ${r.pass ? "yes" : "NO"} |`);
if (rows.some((r) => !r.pass)) process.exitCode = 1;
