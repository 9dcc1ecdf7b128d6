// convergence: from a joining node's registration in the embedded store (its registered_at, ms) to its pod CIDR's
// route present on every other node (`ip -ts monitor route` in each peer namespace, started before the join).
// Target: p50 <= 100 ms. Baseline, same run: one `ip -n <peer> route replace` process, the floor of any programming.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { flatnet, isRoot, median, percentile, report, run, waitUntil } from "./lab-harness.mjs";

const JOINS = Number(process.env.JOINS ?? 5);
const PREFIX = "fn-e9-";
const STATE_DIR = "/tmp/flatnet-bench-convergence";
const MARKER = "192.0.2.77/32";

if (!isRoot()) {
  console.log("convergence bench skipped: it builds network namespaces and needs root");
  process.exit(0);
}

/** `ip -ts monitor route` in a namespace; ready once it has seen a marker route we add and delete. */
async function startMonitor(netns) {
  const child = spawn("ip", ["-n", netns, "-ts", "monitor", "route"], { stdio: ["ignore", "pipe", "ignore"] });
  let text = "";
  child.stdout.setEncoding("utf8").on("data", (chunk) => (text += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  // Add and delete the marker until the monitor reports it: both are events, whatever state the kernel is in.
  await waitUntil(() => {
    run("ip", ["-n", netns, "route", "add", MARKER, "dev", "lo"]);
    run("ip", ["-n", netns, "route", "del", MARKER, "dev", "lo"]);
    return text.includes("192.0.2.77");
  });
  return {
    /** ms since the epoch of the first route event whose line starts with dst. */
    firstSeen: (dst) => {
      const line = text.split("\n").find((l) => l.replace(/^\[[^\]]+\]\s*/, "").startsWith(`${dst} `));
      return line === undefined ? undefined : Date.parse(`${line.slice(1, line.indexOf("]"))}Z`);
    },
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

function registeredAt(name) {
  const db = new DatabaseSync(join(STATE_DIR, "store", "flatnet.db"), { readOnly: true });
  try {
    return db.prepare("SELECT registered_at FROM nodes WHERE name = ?").get(name)?.registered_at;
  } finally {
    db.close();
  }
}

const samples = [];
const baselines = [];
flatnet(["lab", "up", "--nodes", "3", "--pods-per-node", "0", "--prefix", PREFIX, "--state-dir", STATE_DIR]);
try {
  for (let join = 0; join < JOINS; join++) {
    const status = JSON.parse(flatnet(["lab", "status", "--json", "--state-dir", STATE_DIR]).stdout);
    const monitors = await Promise.all(status.nodes.map(async (node) => ({ node, monitor: await startMonitor(node.netns) })));
    let added;
    try {
      flatnet(["lab", "add-node", "--state-dir", STATE_DIR]);
      added = JSON.parse(flatnet(["lab", "status", "--json", "--state-dir", STATE_DIR]).stdout).nodes.at(-1);
    } finally {
      for (const { monitor } of monitors) await monitor.stop();
    }
    const t0 = registeredAt(added.name);
    const dst = added.podCidrs[0];
    for (const { node, monitor } of monitors) {
      const seen = monitor.firstSeen(dst);
      if (seen === undefined || t0 === undefined) throw new Error(`no route to ${dst} seen on ${node.name}`);
      samples.push(seen - t0);
    }
    // Baseline: one process programming one route into the same peer namespace.
    const peer = status.nodes[0].netns;
    const started = performance.now();
    run("ip", ["-n", peer, "route", "replace", "198.51.100.0/24", "dev", "lo"]);
    baselines.push(performance.now() - started);
    run("ip", ["-n", peer, "route", "del", "198.51.100.0/24", "dev", "lo"]);
    flatnet(["lab", "remove-node", added.name, "--state-dir", STATE_DIR]);
  }
} finally {
  flatnet(["lab", "down", "--state-dir", STATE_DIR, "--prefix", PREFIX]);
  rmSync(STATE_DIR, { recursive: true, force: true });
}

process.stderr.write(`convergence samples (ms): ${samples.map((s) => s.toFixed(0)).join(" ")}\n`);
const p50 = percentile(samples, 0.5);
const baseline = median(baselines);
report("convergence", [
  { bench: "convergence", metric: `registration -> route on every peer, p50 of ${samples.length} (${JOINS} joins x 3 peers) / one ip route process`, value: p50, unit: "ms", baseline, ratio: p50 / baseline, target: "p50 <= 100 ms", pass: p50 <= 100 },
  { bench: "convergence", metric: "registration -> route on every peer, p90", value: percentile(samples, 0.9), unit: "ms", target: "informational", pass: true },
]);
