// programming: the agent programming 5,000 VXLAN peers (IPv4: neighbour + FDB entry + route each, 15,000 objects plus
// the device) into one namespace. Full sync (read + diff + apply, as the reconcile loop does it) divided by a bare
// `ip -batch` / `bridge -batch` of the same pre-rendered lines, run alternately in the same process; and one peer
// changing among 5,000 (its underlay IP: the FDB entry is replaced; VTEP MACs are derived from node names, so the
// underlay IP is what changes in practice) applied, with the same bare batch as baseline; a peer joining (neighbour,
// FDB entry, route) is informational. The agent's path is measured twice, side by side: one-shot (a process per
// batch, the fallback) and through long-lived batch sessions (NetnsBatchSessions, what createLinuxKernel uses).
// Targets: full sync <= 1.5x bare; one peer changed <= 5 ms (apply). Run as root: it builds namespace fn-tb-bench.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ClusterSnapshot, type KernelState, type NetworkOptions, computeNodeNetwork, diffNetwork, renderPlan } from "@flatnet/core";
import { NetnsBatchSessions, applyKernelPlan, readKernelState, renderKernelBatches } from "../apps/agent/src/linux/index.ts";

const PEERS = Number(process.env.PEERS ?? 5_000);
const RUNS = Number(process.env.RUNS ?? 5);
const CHANGE_RUNS = Number(process.env.CHANGE_RUNS ?? 20);
const NS = "fn-tb-bench";
const here = fileURLToPath(new URL(".", import.meta.url));

if (process.getuid?.() !== 0) {
  console.log("programming bench skipped: it builds a network namespace and needs root");
  process.exit(0);
}

function sh(file: string, args: string[], input?: string): string {
  const result = spawnSync(file, args, { encoding: "utf8", input, maxBuffer: 256 << 20 });
  if (result.status !== 0) throw new Error(`${file} ${args.join(" ")} exited ${result.status}: ${result.stderr.slice(0, 500)}`);
  return result.stdout;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const OPTIONS: NetworkOptions = { backend: "vxlan", vni: 1, vxlanPort: 8472, underlayDevice: "eth0", underlayMtu: 1500, underlaySubnets: [], vxlanDevice: "flatnet.1" };

function cluster(change?: { peer: number; kind: "underlay" | "absent" }): ClusterSnapshot {
  const nodes = [];
  for (let i = 0; i <= PEERS; i++) {
    const node = { name: `node-${i}`, underlayIps: [`172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`], podCidrs: [`10.${i >> 8}.${i & 255}.0/24`] };
    if (i !== change?.peer) nodes.push(node);
    else if (change.kind === "underlay") nodes.push({ ...node, underlayIps: ["172.31.255.254"] });
  }
  return { clusterCidrs: ["10.0.0.0/8"], nodes };
}

function desiredOf(snapshot: ClusterSnapshot): KernelState {
  const result = computeNodeNetwork(snapshot, "node-0", OPTIONS);
  if (!result.success) throw new Error(result.error.message);
  const { vxlan, routes, neighbours, fdb } = result.data;
  return { vxlan: vxlan!, routes, neighbours, fdb };
}

/** Runs pre-rendered batches with one process each, as bare as it gets (the baseline). */
function bare(batches: { tool: "ip" | "bridge"; lines: string[] }[]): number {
  const inputs = batches.map((b) => ({ tool: b.tool, input: b.lines.join("\n") + "\n" }));
  const start = performance.now();
  for (const { tool, input } of inputs) sh(tool, ["-n", NS, "-batch", "-"], input);
  return performance.now() - start;
}

function reset(): void {
  spawnSync("ip", ["-n", NS, "link", "del", "flatnet.1"], { stdio: "ignore" });
}

sh("ip", ["netns", "add", NS]);
const sessions = new NetnsBatchSessions(NS);
try {
  sh("ip", ["-n", NS, "-batch", "-"], "link set lo up\nlink add eth0 type veth peer name ul0\naddr add 172.16.0.1/12 dev eth0\nlink set eth0 up\nlink set ul0 up\n");
  const desired = desiredOf(cluster());
  const empty: KernelState = { routes: [], neighbours: [], fdb: [] };
  const fullPlan = diffNetwork(desired, empty);
  const fullBatches = renderPlan(fullPlan);
  if (fullPlan.steps.length !== 3 * PEERS + 1) throw new Error(`plan has ${fullPlan.steps.length} steps, expected ${3 * PEERS + 1}`);

  // Full programming, alternating bare and agent so drift on a shared machine hits both alike.
  const bareMs: number[] = [];
  const agentMs: number[] = [];
  const sessionFullMs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    reset();
    bareMs.push(bare(fullBatches));
    reset();
    let start = performance.now();
    await applyKernelPlan(NS, diffNetwork(desired, await readKernelState(NS)));
    agentMs.push(performance.now() - start);
    reset();
    start = performance.now();
    await applyKernelPlan(NS, diffNetwork(desired, await readKernelState(NS)), sessions.run);
    sessionFullMs.push(performance.now() - start);
  }
  const check = await readKernelState(NS);
  if (check.routes.length !== PEERS || check.neighbours.length !== PEERS || check.fdb.length !== PEERS) {
    throw new Error(`after the agent's sync: ${check.routes.length} routes, ${check.neighbours.length} neighbours, ${check.fdb.length} FDB entries`);
  }

  // A resync with nothing to do: the read of 15,000 objects dominates (informational).
  const idleMs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    const plan = diffNetwork(desired, await readKernelState(NS));
    idleMs.push(performance.now() - start);
    if (plan.steps.length !== 0) throw new Error(`an idle resync planned ${plan.steps.length} steps`);
  }

  // One peer changes among 5,000, back and forth: diff + apply against the state as read (one-shot, then undone and
  // applied again through the sessions), then undone and the same lines run bare, so the kernel does the same work.
  async function flip(other: KernelState, runs: number): Promise<{ agent: number[]; session: number[]; diff: number[]; bare: number[]; steps: number }> {
    const agent: number[] = [];
    const session: number[] = [];
    const diff: number[] = [];
    const bareRuns: number[] = [];
    let steps = 0;
    for (let run = 0; run < runs; run++) {
      const [from, to] = run % 2 === 0 ? [desired, other] : [other, desired];
      const actual = await readKernelState(NS);
      let start = performance.now();
      const plan = diffNetwork(to, actual);
      const diffed = performance.now();
      await applyKernelPlan(NS, plan);
      agent.push(performance.now() - diffed);
      diff.push(diffed - start);
      steps = plan.steps.length;
      const undo = renderKernelBatches(diffNetwork(from, to));
      bare(undo);
      start = performance.now();
      await applyKernelPlan(NS, plan, sessions.run);
      session.push(performance.now() - start);
      bare(undo);
      bareRuns.push(bare(renderKernelBatches(plan)));
    }
    if (diffNetwork(runs % 2 === 0 ? desired : other, await readKernelState(NS)).steps.length !== 0) throw new Error("the changes did not converge");
    return { agent, session, diff, bare: bareRuns, steps };
  }
  const moved = await flip(desiredOf(cluster({ peer: PEERS >> 1, kind: "underlay" })), CHANGE_RUNS);
  const joined = await flip(desiredOf(cluster({ peer: PEERS >> 1, kind: "absent" })), CHANGE_RUNS);
  const changeMs = moved.agent;
  const changeBareMs = moved.bare;
  const changeSteps = moved.steps;

  const full = median(agentMs);
  const fullBare = median(bareMs);
  const change = median(moved.session);
  const changeOneShot = median(changeMs);
  const sessionFull = median(sessionFullMs);
  const changeBare = median(changeBareMs);
  const rows = [
    {
      bench: "programming",
      metric: `full sync of ${PEERS} IPv4 vxlan peers (${3 * PEERS} objects; read+diff+apply) / bare ip+bridge -batch`,
      value: round(sessionFull), unit: "ms", baseline: round(fullBare), ratio: round(sessionFull / fullBare), target: "<= 1.5x", pass: sessionFull / fullBare <= 1.5,
    },
    {
      bench: "programming",
      metric: `full sync of ${PEERS} IPv4 vxlan peers, one-shot path (a process per batch), informational`,
      value: round(full), unit: "ms", baseline: round(fullBare), ratio: round(full / fullBare),
    },
    {
      bench: "programming",
      metric: `one peer's underlay IP changed among ${PEERS}: apply of the plan (${changeSteps} step, FDB replace) through the batch session vs the same bare one-shot batch`,
      value: round(change), unit: "ms", baseline: round(changeBare), ratio: round(change / changeBare), target: "<= 5 ms", pass: change <= 5,
    },
    {
      bench: "programming",
      metric: `one peer's underlay IP changed among ${PEERS}: one-shot path (a process per batch), informational`,
      value: round(changeOneShot), unit: "ms", baseline: round(changeBare), ratio: round(changeOneShot / changeBare),
    },
    {
      bench: "programming",
      metric: `one peer leaving/joining among ${PEERS}: apply (${joined.steps} steps, 2 batches) through the sessions vs bare (2 processes), informational`,
      value: round(median(joined.session)), unit: "ms", baseline: round(median(joined.bare)), ratio: round(median(joined.session) / median(joined.bare)),
    },
    {
      bench: "programming",
      metric: `one peer leaving/joining among ${PEERS}: one-shot path (2 processes), informational`,
      value: round(median(joined.agent)), unit: "ms", baseline: round(median(joined.bare)), ratio: round(median(joined.agent) / median(joined.bare)),
    },
    {
      bench: "programming",
      metric: `diffNetwork of one changed peer against ${3 * PEERS} objects read back (pure compute), informational`,
      value: round(median(moved.diff)), unit: "ms",
    },
    {
      bench: "programming",
      metric: `idle resync over ${PEERS} peers (read ${3 * PEERS} objects + diff), informational`,
      value: round(median(idleMs)), unit: "ms",
    },
  ];
  process.stderr.write(`full: session ${sessionFullMs.map(round).join(" ")} | one-shot ${agentMs.map(round).join(" ")} | bare ${bareMs.map(round).join(" ")} ms\n`);
  process.stderr.write(`one peer changed: session ${moved.session.map(round).join(" ")} | one-shot ${changeMs.map(round).join(" ")} ms\n`);
  process.stdout.write("| metric | value | baseline | ratio | target | pass |\n|---|---|---|---|---|---|\n");
  for (const r of rows) {
    process.stdout.write(`| ${r.metric} | ${r.value} ms | ${r.baseline ?? ""}${r.baseline === undefined ? "" : " ms"} | ${r.ratio === undefined ? "" : `${r.ratio}x`} | ${r.target ?? ""} | ${r.pass === undefined ? "" : r.pass ? "yes" : "NO"} |\n`);
  }
  mkdirSync(join(here, "results"), { recursive: true });
  writeFileSync(join(here, "results", "programming.json"), JSON.stringify(rows, null, 2) + "\n");
} finally {
  await sessions.close();
  spawnSync("ip", ["netns", "del", NS], { stdio: "ignore" });
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
