// core-routes bench: computeNodeNetwork + diffNetwork for 5,000 dual-stack VXLAN peers, on Node, Bun and Deno side
// by side, against the built package (packages/core/dist). Baseline, measured in the same process on the same data:
// a naive "did anything change?" check, JSON.stringify(desired) === JSON.stringify(actual), which yields no plan.
// Usage: node bench/core-routes.bench.mjs          (orchestrates; builds core if dist is stale)
//        <runtime> bench/core-routes.bench.mjs --worker   (measures in this runtime, prints JSON)
const PEERS = 5_000;
const WARMUP = 15;
const RUNS = 40;
const TARGET_MS = 25;

const args = globalThis.Deno?.args ?? globalThis.process?.argv.slice(2) ?? [];
if (args.includes("--worker")) await worker();
else await orchestrate();

async function worker() {
  const core = await import(new URL("../packages/core/dist/index.js", import.meta.url).href);
  const clusterCidrs = ["10.0.0.0/8", "fd00:10::/48"];
  const nodes = [];
  for (let index = 0; index <= PEERS; index++) {
    const hex = index.toString(16);
    nodes.push({
      name: `node-${index}`,
      underlayIps: [`172.${16 + (index >> 16)}.${(index >> 8) & 255}.${index & 255}`],
      podCidrs: [`10.${index >> 8}.${index & 255}.0/24`, `fd00:10:0:${hex}::/64`],
    });
  }
  const cluster = { clusterCidrs, nodes };
  const options = { backend: "vxlan", vni: 1, vxlanPort: 8472, underlayDevice: "eth0", underlayMtu: 1500, underlaySubnets: [], vxlanDevice: "flatnet.1" };
  const initial = core.computeNodeNetwork(cluster, "node-0", options);
  if (!initial.success) throw new Error(initial.error.message);
  const d = initial.data;
  if (d.routes.length !== PEERS * 2 || d.fdb.length !== PEERS || d.skipped.length !== 0) throw new Error(`unexpected desired state: ${d.routes.length} routes, ${d.skipped.length} skipped`);
  // The kernel as read back: same objects, fresh copies (an adapter builds new objects on every read).
  const readBack = JSON.parse(JSON.stringify({ vxlan: d.vxlan, routes: d.routes, neighbours: d.neighbours, fdb: d.fdb }));
  const empty = { routes: [], neighbours: [], fdb: [] };

  // CPU time of this process (user + system) when the runtime offers it: on a shared, oversubscribed machine wall
  // time mostly measures the scheduler. Wall time is reported alongside.
  const cpuUsage = globalThis.process?.cpuUsage?.bind(globalThis.process);
  const measure = (fn, before = () => {}) => {
    for (let i = 0; i < WARMUP; i++) {
      before();
      fn();
    }
    const cpu = [];
    const wall = [];
    for (let i = 0; i < RUNS; i++) {
      before();
      const startCpu = cpuUsage?.();
      const start = performance.now();
      fn();
      wall.push(performance.now() - start);
      if (startCpu) {
        const used = cpuUsage(startCpu);
        cpu.push((used.user + used.system) / 1000);
      }
    }
    const median = (values) => (values.length === 0 ? undefined : values.sort((a, b) => a - b)[Math.floor(values.length / 2)]);
    return { cpu: median(cpu), wall: median(wall) };
  };
  let sink = 0;
  const steady = measure(() => {
    const desired = core.computeNodeNetwork(cluster, "node-0", options);
    sink += core.diffNetwork(desired.data, readBack).steps.length;
  });
  const cold = measure(() => {
    const desired = core.computeNodeNetwork(cluster, "node-0", options);
    sink += core.diffNetwork(desired.data, empty).steps.length;
  });
  const first = measure(
    () => {
      const desired = core.computeNodeNetwork(cluster, "node-0", options);
      sink += core.diffNetwork(desired.data, readBack).steps.length;
    },
    () => core.clearParseCache(),
  );
  const naive = measure(() => {
    const desired = core.computeNodeNetwork(cluster, "node-0", options).data;
    const wanted = { vxlan: desired.vxlan, routes: desired.routes, neighbours: desired.neighbours, fdb: desired.fdb };
    sink += JSON.stringify(wanted) === JSON.stringify(readBack) ? 1 : 0;
  });
  const coldPlan = core.diffNetwork(d, empty).steps.length;
  const steadyPlan = core.diffNetwork(d, readBack).steps.length;
  console.log(JSON.stringify({ steady, cold, first, naive, coldPlan, steadyPlan, sink }));
}

async function orchestrate() {
  const { spawnSync } = await import("node:child_process");
  const { existsSync, mkdirSync, writeFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { coreRuntimes, root } = await import("./core-runtimes.mjs");
  const runtimes = coreRuntimes(import.meta.url);
  const rows = [];
  const table = [
    "| runtime | version | compute+diff, steady (0 steps) | cold kernel (all steps) | first computation (no parse memo) | baseline: compute + JSON.stringify compare | ratio steady/baseline | target (Node, steady) | pass |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  const show = (m) => `${(m.cpu ?? m.wall).toFixed(2)} ms${m.cpu === undefined ? " (wall)" : ` (wall ${m.wall.toFixed(2)})`}`;
  const value = (m) => m.cpu ?? m.wall;
  for (const runtime of runtimes) {
    if (!existsSync(runtime.command)) {
      table.push(`| ${runtime.name} | not installed | | | | | | | |`);
      continue;
    }
    const version = spawnSync(runtime.command, ["--version"], { encoding: "utf8" }).stdout.trim().split("\n")[0];
    const run = spawnSync(runtime.command, runtime.args, { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    const line = run.stdout.trim().split("\n").at(-1);
    if (run.status !== 0 || !line) {
      table.push(`| ${runtime.name} | ${version} | failed: ${(run.stderr || "").trim().split("\n")[0]} | | | | | | |`);
      continue;
    }
    const result = JSON.parse(line);
    const isNode = runtime.name === "node";
    const ratio = value(result.steady) / value(result.naive);
    const pass = isNode ? value(result.steady) <= TARGET_MS : undefined;
    const target = isNode ? `<= ${TARGET_MS} ms` : undefined;
    table.push(`| ${runtime.name} | ${version} | ${show(result.steady)} | ${show(result.cold)}, ${result.coldPlan} steps | ${show(result.first)} | ${show(result.naive)} | ${ratio.toFixed(2)}x | ${target ?? ""} | ${pass === undefined ? "" : pass ? "yes" : "NO"} |`);
    const bench = `core-routes ${runtime.name}`;
    const unit = result.steady.cpu === undefined ? "ms wall" : "ms cpu";
    const row = (metric, m, withTarget) => ({ bench, metric, value: value(m), unit, baseline: value(result.naive), ratio: value(m) / value(result.naive), target: withTarget ? target : undefined, pass: withTarget ? pass : undefined });
    rows.push(row(`compute+diff ${PEERS} dual-stack vxlan peers, steady`, result.steady, true));
    rows.push(row(`compute+diff ${PEERS} dual-stack vxlan peers, cold kernel (${result.coldPlan} steps)`, result.cold, false));
    rows.push(row(`compute+diff ${PEERS} dual-stack vxlan peers, first computation`, result.first, false));
  }
  process.stdout.write(`${PEERS} peers x 2 families, median of ${RUNS} runs after ${WARMUP} warm-up runs, each runtime in its own process on the same data.\n`);
  process.stdout.write(`Times are CPU time (user+system) of the runtime's process, wall time in brackets. Baseline: the same computeNodeNetwork\n`);
  process.stdout.write(`plus a naive JSON.stringify(desired) === JSON.stringify(actual) check instead of diffNetwork (it yields no plan).\n\n`);
  process.stdout.write(`${table.join("\n")}\n`);
  mkdirSync(join(root, "bench/results"), { recursive: true });
  writeFileSync(join(root, "bench/results/core-routes.json"), `${JSON.stringify(rows, null, 2)}\n`);
}
