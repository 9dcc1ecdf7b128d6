// trace: explaining failed pairs with the path tracer. Two node namespaces joined by a veth (fn-tr-bench-n1/n2),
// PAIRS pods' addresses on node-1's pod bridge, every pair to one pod of node-2 broken by a blackhole route on
// node-1. Measured: evidence gathered once per node (one `ip -batch` per phase, one process per netfilter tool)
// plus the pure rules for every pair, against the baseline of one `ip route get` process per hop query; and one
// pair traced alone. Targets: 100 failed pairs explained <= 5 s; one trace <= 1 s. Run as root.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { planTraceQueries, tracePair, type NodeEvidence, type NodeProbeState, type PairResult, type ProbePair } from "@flatnet/core";
import { gatherEvidence } from "../apps/agent/src/linux/evidence.ts";

const PAIRS = Number(process.env.PAIRS ?? 100);
const RUNS = Number(process.env.RUNS ?? 3);
const NODES = ["fn-tr-bench-n1", "fn-tr-bench-n2"];
const here = fileURLToPath(new URL(".", import.meta.url));

if (process.getuid?.() !== 0) {
  console.log("trace bench skipped: it builds network namespaces and needs root");
  process.exit(0);
}

function sh(file: string, args: string[], input?: string): string {
  const result = spawnSync(file, args, { encoding: "utf8", input, maxBuffer: 64 << 20 });
  if (result.status !== 0 && file !== "ip") throw new Error(`${file} ${args.join(" ")} exited ${result.status}: ${result.stderr.slice(0, 500)}`);
  return result.stdout;
}

function down(): void {
  for (const ns of NODES) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
}

function up(): void {
  down();
  for (const ns of NODES) sh("ip", ["netns", "add", ns]);
  const [n1, n2] = NODES as [string, string];
  sh("ip", ["-n", n1, "-batch", "-"], [
    `link add eth0 type veth peer name eth0 netns ${n2}`,
    "link set lo up", "addr add 172.31.0.11/24 dev eth0", "link set eth0 up",
    "link add fn-br0 type bridge", "addr add 10.244.1.1/24 dev fn-br0", "link set fn-br0 up",
    "route add 10.244.2.0/24 via 172.31.0.12 dev eth0 proto 77",
    "route add blackhole 10.244.2.2/32",
  ].join("\n") + "\n");
  sh("ip", ["-n", n2, "-batch", "-"], [
    "link set lo up", "addr add 172.31.0.12/24 dev eth0", "link set eth0 up",
    "link add fn-br0 type bridge", "addr add 10.244.2.1/24 dev fn-br0", "link set fn-br0 up",
    "route add 10.244.1.0/24 via 172.31.0.11 dev eth0 proto 77",
  ].join("\n") + "\n");
  for (const ns of NODES) sh("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
}

const nodeIps = new Map([["node-1", ["172.31.0.11"]], ["node-2", ["172.31.0.12"]]]);
const netnsOf = new Map([["node-1", NODES[0] as string], ["node-2", NODES[1] as string]]);
const states = new Map<string, NodeProbeState>([
  ["node-1", { node: "node-1", reachable: true, podCidrs: ["10.244.1.0/24"], nodeIps: ["172.31.0.11"], podMtu: 1500 }],
  ["node-2", { node: "node-2", reachable: true, podCidrs: ["10.244.2.0/24"], nodeIps: ["172.31.0.12"], podMtu: 1500 }],
]);

function failedPairs(count: number): PairResult[] {
  return Array.from({ length: count }, (_, i) => {
    const pair: ProbePair = {
      id: `pod-1-${i}>pod-2-0/IPv4`,
      src: { pod: `pod-1-${i}`, node: "node-1", ip: `10.244.1.${i + 2}`, port: 7471 },
      dst: { pod: "pod-2-0", node: "node-2", ip: "10.244.2.2", port: 7471 },
      family: "IPv4",
      path: "cross-node",
    };
    return { pair, verdict: "failed", attempts: 1, problems: ["tcp-unreachable", "udp-unreachable"], nat: { verdict: "unknown", expectedSrc: pair.src.ip }, diagnosis: [] };
  });
}

/** The tracer's way: each node's evidence once (in parallel), then the pure rules for every pair. */
async function explain(results: PairResult[]): Promise<number> {
  const queries = planTraceQueries(results.map((r) => r.pair), nodeIps);
  const evidence = new Map<string, NodeEvidence>();
  // Nodes only: this bench has no router or pod namespaces to read (the `*router` and `*pod` keys).
  const nodes = [...queries].filter(([node]) => netnsOf.has(node));
  await Promise.all(nodes.map(async ([node, lookups]) => evidence.set(node, await gatherEvidence(netnsOf.get(node) as string, lookups, { node }))));
  let named = 0;
  for (const r of results) if (tracePair(r, states, evidence, nodeIps).findings[0]?.code === "blackhole-route") named++;
  return named;
}

/** Baseline: one `ip route get` process per hop query (arrival devices resolved by hand, as a script would). */
function baseline(results: PairResult[]): void {
  const queries = planTraceQueries(results.map((r) => r.pair), nodeIps);
  for (const [node, lookups] of queries) {
    const ns = netnsOf.get(node) as string;
    for (const q of lookups) {
      const iif = q.iifOf === undefined ? [] : ["iif", q.iifOf.startsWith("10.244.1.") || q.iifOf.startsWith("10.244.2.") ? "fn-br0" : "eth0"];
      spawnSync("ip", ["-n", ns, "-j", "route", "get", q.dst, ...(q.from ? ["from", q.from] : []), ...iif], { encoding: "utf8" });
    }
  }
}

async function time(fn: () => unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

up();
try {
  const many = failedPairs(PAIRS);
  const one = failedPairs(1);
  const named = await explain(many);
  if (named !== PAIRS) throw new Error(`the tracer named the blackhole route for ${named} of ${PAIRS} pairs`);
  const traced: number[] = [];
  const base: number[] = [];
  const single: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    traced.push(await time(() => explain(many)));
    base.push(await time(() => baseline(many)));
    single.push(await time(() => explain(one)));
  }
  const t = median(traced);
  const b = median(base);
  const s = median(single);
  const rows = [
    { bench: "trace", metric: `explain ${PAIRS} failed pairs (evidence once per node + rules)`, value: t, unit: "ms", baseline: b, ratio: t / b, target: "<= 5000 ms", pass: t <= 5000 },
    { bench: "trace", metric: "one pair traced", value: s, unit: "ms", target: "<= 1000 ms", pass: s <= 1000 },
  ];
  console.log(`explain ${PAIRS} failed pairs: ${t.toFixed(0)} ms (baseline, one ip route get process per query: ${b.toFixed(0)} ms; ratio ${(t / b).toFixed(2)})`);
  console.log(`one pair traced: ${s.toFixed(0)} ms`);
  mkdirSync(join(here, "results"), { recursive: true });
  writeFileSync(join(here, "results", "trace.json"), JSON.stringify(rows, null, 2));
} finally {
  down();
}
