// datapath: iperf3 TCP between pods on different nodes of a flatnet lab, divided by the raw underlay between the
// same two node namespaces, runs interleaved in the same process (pod, underlay, pod, ...) so drift hits both.
// Targets: host-gw >= 0.95x, vxlan >= 0.85x. Noise on a 2-vCPU VM is about +-15 % and drifts with whatever else runs,
// so each pod run is paired with the underlay run right after it, and the ratio is the median of the pairs' ratios
// (the order alternates within a pair, so neither side always runs first).
import { rmSync } from "node:fs";
import { flatnet, isRoot, median, report, run, startInNetns, waitUntil } from "./lab-harness.mjs";

const RUNS = Number(process.env.RUNS ?? 7);
const DURATION = Number(process.env.DURATION ?? 3);
const PREFIX = "fn-e7-";
const STATE_DIR = "/tmp/flatnet-bench-datapath";
const TARGETS = { "host-gw": 0.95, vxlan: 0.85 };

if (!isRoot()) {
  console.log("datapath bench skipped: it builds network namespaces and needs root");
  process.exit(0);
}

function iperf(clientNs, serverIp) {
  const out = run("ip", ["netns", "exec", clientNs, "iperf3", "-c", serverIp, "-t", String(DURATION), "-J"]);
  return JSON.parse(out).end.sum_received.bits_per_second / 1e9;
}

async function measure(backend) {
  flatnet(["lab", "up", "--nodes", "2", "--pods-per-node", "1", "--backend", backend, "--prefix", PREFIX, "--state-dir", STATE_DIR]);
  try {
    const status = JSON.parse(flatnet(["lab", "status", "--json", "--state-dir", STATE_DIR]).stdout);
    const [n1, n2] = status.nodes;
    const client = n1.pods[0];
    const server = n2.pods[0];
    const servers = [startInNetns(server.netns, "iperf3", ["-s", "-B", server.ips[0]]), startInNetns(n2.netns, "iperf3", ["-s", "-B", n2.underlayIps[0]])];
    try {
      for (const [ns] of [[server.netns], [n2.netns]]) {
        await waitUntil(() => run("ip", ["netns", "exec", ns, "ss", "-ltnH", "sport = :5201"]).includes("LISTEN"));
      }
      const pod = [];
      const underlay = [];
      for (let i = 0; i < RUNS; i++) {
        if (i % 2 === 0) {
          pod.push(iperf(client.netns, server.ips[0]));
          underlay.push(iperf(n1.netns, n2.underlayIps[0]));
        } else {
          underlay.push(iperf(n1.netns, n2.underlayIps[0]));
          pod.push(iperf(client.netns, server.ips[0]));
        }
      }
      process.stderr.write(`${backend}: pod ${pod.map((v) => v.toFixed(2)).join(" ")} | underlay ${underlay.map((v) => v.toFixed(2)).join(" ")} Gbit/s\n`);
      return { pod: median(pod), underlay: median(underlay), ratio: median(pod.map((p, i) => p / underlay[i])) };
    } finally {
      for (const s of servers) await s.stop();
    }
  } finally {
    flatnet(["lab", "down", "--state-dir", STATE_DIR, "--prefix", PREFIX]);
    rmSync(STATE_DIR, { recursive: true, force: true });
  }
}

const rows = [];
for (const backend of ["host-gw", "vxlan"]) {
  const { pod, underlay, ratio } = await measure(backend);
  rows.push({
    bench: "datapath",
    metric: `${backend} pod-to-pod TCP across nodes (median of ${RUNS} x ${DURATION}s) / raw underlay (median of paired ratios)`,
    value: pod,
    unit: "Gbit/s",
    baseline: underlay,
    ratio,
    target: `>= ${TARGETS[backend]}x`,
    pass: ratio >= TARGETS[backend],
  });
}
report("datapath", rows);
