// datapath: iperf3 TCP between pods on different nodes of a flatnet lab, divided by the raw underlay between the
// same two node namespaces, runs interleaved in the same process (pod, underlay, pod, ...) so drift hits both.
// Targets: host-gw >= 0.95x, vxlan >= 0.85x. Noise on a 2-vCPU VM is about +-15 % and drifts with whatever else runs,
// so each pod run is paired with the underlay run right after it, and the ratio is the median of the pairs' ratios
// (the order alternates within a pair, so neither side always runs first).
//
// Second baseline: the hand-built topology of /work/shared/netlab/ (topo.sh + hostgw.sh / vxlan.sh, 2 nodes x 1 pod:
// underlay bridge, node netns, cni0 bridge, pod veth, host-gw routes or a flannel-style vxlan device with pod MTU 1450,
// no nftables), built in namespaces `fn-e7h-*` next to the flatnet lab and measured in the same loop. It shows what a
// veth-pod datapath reaches on this machine at all, so "flatnet pod / hand-built pod" is the figure flatnet itself
// owns; the two extra rows per backend are informational (the target stays on flatnet / underlay).
import { rmSync } from "node:fs";
import { flatnet, isRoot, median, report, run, startInNetns, waitUntil } from "./lab-harness.mjs";

const RUNS = Number(process.env.RUNS ?? 7);
const DURATION = Number(process.env.DURATION ?? 3);
const PREFIX = "fn-e7-";
const HAND_PREFIX = "fn-e7h-";
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

// ---- hand-built baseline: the commands of /work/shared/netlab/topo.sh, hostgw.sh and vxlan.sh for NODES=(1 2),
// one pod ("a", 10.244.N.2) per node, with every name under HAND_PREFIX. Every veth is created inside one of these
// namespaces and its peer moved straight into another, so nothing touches the root namespace.
const HAND_NODES = [1, 2];
const hand = {
  underlay: `${HAND_PREFIX}underlay`,
  node: (n) => `${HAND_PREFIX}node${n}`,
  pod: (n) => `${HAND_PREFIX}pod-${n}a`,
  podIp: (n) => `10.244.${n}.2`,
  nodeIp: (n) => `172.31.0.1${n}`,
};
const handNamespaces = () => [hand.underlay, ...HAND_NODES.flatMap((n) => [hand.node(n), hand.pod(n)])];
const ip = (...args) => run("ip", args);

function listNetns() {
  return new Set(ip("netns", "list").split("\n").map((line) => line.split(" ")[0]).filter(Boolean));
}

/** Deletes the hand-built namespaces by exact name (their links, routes and vxlan devices go with them). */
function handDown() {
  const present = listNetns();
  const errors = [];
  for (const ns of handNamespaces()) {
    if (!present.has(ns)) continue;
    try {
      ip("netns", "del", ns);
    } catch (err) {
      errors.push(err.message);
    }
  }
  if (errors.length) {
    // reported, not thrown: from a finally a throw would hide the error that got us there
    process.stderr.write(`hand-built baseline cleanup failed: ${errors.join("; ")}\n`);
    process.exitCode = 1;
  }
}

function handUp(backend) {
  handDown(); // a run killed before its finally leaves its namespaces behind; they are ours by name
  // topo.sh: underlay bridge, node namespaces with eth0 on it, cni0 bridge, pod veth
  ip("netns", "add", hand.underlay);
  ip("-n", hand.underlay, "link", "set", "lo", "up");
  ip("-n", hand.underlay, "link", "add", "br0", "type", "bridge");
  ip("-n", hand.underlay, "link", "set", "br0", "up");
  for (const n of HAND_NODES) {
    const node = hand.node(n);
    ip("netns", "add", node);
    ip("-n", node, "link", "set", "lo", "up");
    run("ip", ["netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    ip("-n", hand.underlay, "link", "add", `ul-node${n}`, "type", "veth", "peer", "name", "eth0", "netns", node);
    ip("-n", hand.underlay, "link", "set", `ul-node${n}`, "master", "br0", "up");
    ip("-n", node, "addr", "add", `${hand.nodeIp(n)}/24`, "dev", "eth0");
    ip("-n", node, "link", "set", "eth0", "up");
    ip("-n", node, "link", "add", "cni0", "type", "bridge");
    ip("-n", node, "addr", "add", `10.244.${n}.1/24`, "dev", "cni0");
    ip("-n", node, "link", "set", "cni0", "up");
    const pod = hand.pod(n);
    ip("netns", "add", pod);
    ip("-n", pod, "link", "set", "lo", "up");
    ip("-n", node, "link", "add", `veth-${n}a`, "type", "veth", "peer", "name", "eth0", "netns", pod);
    ip("-n", node, "link", "set", `veth-${n}a`, "master", "cni0", "up");
    ip("-n", pod, "addr", "add", `${hand.podIp(n)}/24`, "dev", "eth0");
    ip("-n", pod, "link", "set", "eth0", "up");
    ip("-n", pod, "route", "add", "default", "via", `10.244.${n}.1`);
  }
  const others = (n) => HAND_NODES.filter((m) => m !== n);
  if (backend === "host-gw") {
    // hostgw.sh up
    for (const n of HAND_NODES) {
      for (const m of others(n)) ip("-n", hand.node(n), "route", "replace", `10.244.${m}.0/24`, "via", hand.nodeIp(m), "dev", "eth0");
    }
  } else if (backend === "vxlan") {
    // vxlan.sh up (VNI 1, port 4789, flannel.1, nolearning, static neigh + fdb), then pod MTU 1450
    const mac = {};
    for (const n of HAND_NODES) {
      const node = hand.node(n);
      ip("-n", node, "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", hand.nodeIp(n), "dev", "eth0", "dstport", "4789", "nolearning");
      ip("-n", node, "addr", "add", `10.244.${n}.0/32`, "dev", "flannel.1");
      ip("-n", node, "link", "set", "flannel.1", "up");
      mac[n] = JSON.parse(ip("-j", "-n", node, "link", "show", "dev", "flannel.1"))[0].address;
    }
    for (const n of HAND_NODES) {
      const node = hand.node(n);
      for (const m of others(n)) {
        ip("-n", node, "route", "replace", `10.244.${m}.0/24`, "via", `10.244.${m}.0`, "dev", "flannel.1", "onlink");
        ip("-n", node, "neigh", "replace", `10.244.${m}.0`, "lladdr", mac[m], "dev", "flannel.1", "nud", "permanent");
        run("ip", ["netns", "exec", node, "bridge", "fdb", "append", mac[m], "dev", "flannel.1", "dst", hand.nodeIp(m)]);
      }
    }
    for (const n of HAND_NODES) {
      ip("-n", hand.node(n), "link", "set", `veth-${n}a`, "mtu", "1450");
      ip("-n", hand.pod(n), "link", "set", "eth0", "mtu", "1450");
    }
  } else {
    throw new Error(`hand-built baseline: unknown backend "${backend}" (expected host-gw or vxlan)`);
  }
  // fail fast with a clear message if the copy of the lab commands does not carry traffic
  run("ip", ["netns", "exec", hand.pod(1), "ping", "-c", "1", "-W", "2", hand.podIp(2)]);
  return { client: hand.pod(1), server: hand.pod(2), serverIp: hand.podIp(2) };
}

async function measure(backend) {
  flatnet(["lab", "up", "--nodes", "2", "--pods-per-node", "1", "--backend", backend, "--prefix", PREFIX, "--state-dir", STATE_DIR]);
  try {
    try {
      const baseline = handUp(backend);
      const status = JSON.parse(flatnet(["lab", "status", "--json", "--state-dir", STATE_DIR]).stdout);
      const [n1, n2] = status.nodes;
      const client = n1.pods[0];
      const server = n2.pods[0];
      const servers = [
        startInNetns(server.netns, "iperf3", ["-s", "-B", server.ips[0]]),
        startInNetns(n2.netns, "iperf3", ["-s", "-B", n2.underlayIps[0]]),
        startInNetns(baseline.server, "iperf3", ["-s", "-B", baseline.serverIp]),
      ];
      try {
        for (const ns of [server.netns, n2.netns, baseline.server]) {
          await waitUntil(() => run("ip", ["netns", "exec", ns, "ss", "-ltnH", "sport = :5201"]).includes("LISTEN"));
        }
        const pod = [];
        const underlay = [];
        const handPod = [];
        const runPod = () => pod.push(iperf(client.netns, server.ips[0]));
        const runUnderlay = () => underlay.push(iperf(n1.netns, n2.underlayIps[0]));
        const runHand = () => handPod.push(iperf(baseline.client, baseline.serverIp));
        // Underlay in the middle, the two pod datapaths on either side, swapping sides every run: each of the three
        // pairs (flatnet/underlay, hand-built/underlay, flatnet/hand-built) has its order alternate.
        for (let i = 0; i < RUNS; i++) {
          const order = i % 2 === 0 ? [runPod, runUnderlay, runHand] : [runHand, runUnderlay, runPod];
          for (const step of order) step();
        }
        const fmt = (xs) => xs.map((v) => v.toFixed(2)).join(" ");
        process.stderr.write(`${backend}: flatnet pod ${fmt(pod)} | underlay ${fmt(underlay)} | hand-built pod ${fmt(handPod)} Gbit/s\n`);
        const paired = (a, b) => median(a.map((x, i) => x / b[i]));
        return {
          pod: median(pod),
          underlay: median(underlay),
          handPod: median(handPod),
          ratio: paired(pod, underlay),
          handRatio: paired(handPod, underlay),
          podVsHand: paired(pod, handPod),
        };
      } finally {
        for (const s of servers) await s.stop();
      }
    } finally {
      handDown();
    }
  } finally {
    flatnet(["lab", "down", "--state-dir", STATE_DIR, "--prefix", PREFIX]);
    rmSync(STATE_DIR, { recursive: true, force: true });
  }
}

const rows = [];
const runs = `median of ${RUNS} x ${DURATION}s`;
for (const backend of ["host-gw", "vxlan"]) {
  const m = await measure(backend);
  rows.push(
    {
      bench: "datapath",
      metric: `${backend} pod-to-pod TCP across nodes (${runs}) / raw underlay (median of paired ratios)`,
      value: m.pod,
      unit: "Gbit/s",
      baseline: m.underlay,
      ratio: m.ratio,
      target: `>= ${TARGETS[backend]}x`,
      pass: m.ratio >= TARGETS[backend],
    },
    {
      bench: "datapath",
      metric: `${backend} hand-built netlab pod-to-pod TCP (${runs}) / raw underlay (median of paired ratios)`,
      value: m.handPod,
      unit: "Gbit/s",
      baseline: m.underlay,
      ratio: m.handRatio,
      target: "informational",
      pass: true,
    },
    {
      bench: "datapath",
      metric: `${backend} flatnet pod-to-pod TCP / hand-built netlab pod-to-pod TCP (median of paired ratios)`,
      value: m.pod,
      unit: "Gbit/s",
      baseline: m.handPod,
      ratio: m.podVsHand,
      target: "informational",
      pass: true,
    },
  );
}
report("datapath", rows);
