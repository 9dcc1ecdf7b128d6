// lab: wall time of `flatnet lab up` (3 nodes x 2 pods, host-gw, waits for ready agents and converged routes) plus
// `flatnet lab check` (every ordered pod pair, ICMP + TCP + source check). Target: < 60 s. Baseline, same run: the
// bare namespace topology of the hand-built netlab (underlay bridge, 3 nodes, 6 pods, addresses) in `ip -batch`.
import { rmSync } from "node:fs";
import { flatnet, isRoot, median, report, run } from "./lab-harness.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PREFIX = "fn-e8-";
const STATE_DIR = "/tmp/flatnet-bench-lab";

if (!isRoot()) {
  console.log("lab bench skipped: it builds network namespaces and needs root");
  process.exit(0);
}

function handBuiltTopology() {
  const ns = (name) => `${PREFIX}${name}`;
  const names = ["underlay", ...[1, 2, 3].flatMap((n) => [`node${n}`, `pod-node${n}-1`, `pod-node${n}-2`])].map(ns);
  const started = performance.now();
  run("ip", ["-batch", "-"], { input: names.map((n) => `netns add ${n}`).join("\n") + "\n" });
  const underlay = ["link set lo up", "link add br0 type bridge", "link set br0 up"];
  for (const n of [1, 2, 3]) underlay.push(`link add ul-node${n} type veth peer name eth0 netns ${ns(`node${n}`)}`, `link set ul-node${n} master br0 up`);
  run("ip", ["-n", ns("underlay"), "-batch", "-"], { input: underlay.join("\n") + "\n" });
  for (const n of [1, 2, 3]) {
    const node = ["link set lo up", `addr add 172.31.0.1${n}/24 dev eth0`, "link set eth0 up", "link add cni0 type bridge", `addr add 10.244.${n}.1/24 dev cni0`, "link set cni0 up"];
    for (const p of [1, 2]) node.push(`link add veth${p} type veth peer name eth0 netns ${ns(`pod-node${n}-${p}`)}`, `link set veth${p} master cni0 up`);
    run("ip", ["-n", ns(`node${n}`), "-batch", "-"], { input: node.join("\n") + "\n" });
    for (const p of [1, 2]) {
      const pod = ["link set lo up", `addr add 10.244.${n}.${p + 1}/24 dev eth0`, "link set eth0 up", `route add default via 10.244.${n}.1`];
      run("ip", ["-n", ns(`pod-node${n}-${p}`), "-batch", "-"], { input: pod.join("\n") + "\n" });
    }
  }
  const ms = performance.now() - started;
  run("ip", ["-batch", "-"], { input: names.map((n) => `netns del ${n}`).join("\n") + "\n" });
  return ms;
}

const ups = [];
const checks = [];
const totals = [];
const baselines = [];
for (let round = 0; round < ROUNDS; round++) {
  baselines.push(handBuiltTopology());
  try {
    const up = flatnet(["lab", "up", "--nodes", "3", "--pods-per-node", "2", "--prefix", PREFIX, "--state-dir", STATE_DIR]).ms;
    const check = flatnet(["lab", "check", "--state-dir", STATE_DIR]).ms;
    ups.push(up);
    checks.push(check);
    totals.push(up + check);
    process.stderr.write(`round ${round + 1}: up ${(up / 1000).toFixed(2)} s, check ${(check / 1000).toFixed(2)} s, hand-built topology ${baselines.at(-1).toFixed(0)} ms\n`);
  } finally {
    flatnet(["lab", "down", "--state-dir", STATE_DIR, "--prefix", PREFIX]);
    rmSync(STATE_DIR, { recursive: true, force: true });
  }
}

const total = median(totals) / 1000;
const baseline = median(baselines) / 1000;
report("lab", [
  { bench: "lab", metric: `lab up + lab check, 3 nodes x 2 pods (median of ${ROUNDS}) / hand-built topology`, value: total, unit: "s", baseline, ratio: total / baseline, target: "< 60 s", pass: total < 60 },
  { bench: "lab", metric: "lab up alone (median)", value: median(ups) / 1000, unit: "s", target: "< 60 s", pass: median(ups) < 60_000 },
  { bench: "lab", metric: "lab check alone, 30 ordered pairs (median)", value: median(checks) / 1000, unit: "s", target: "< 60 s", pass: median(checks) < 60_000 },
]);
