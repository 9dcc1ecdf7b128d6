// lab-podman: wall time of `flatnet lab up --runtime podman` (3 nodes x 2 containers of Debian's podman, CNI backend,
// runc) plus `flatnet lab check` until every pair is verified. Target (issue 11): lab up <= 30 s. Baseline, same run:
// the same lab with the default netns runtime (namespaces attached by CNI ADD, no container runtime).
import { rmSync } from "node:fs";
import { flatnet, isRoot, median, report } from "./lab-harness.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PREFIX = "fn-pr-b-";
const STATE_DIR = "/tmp/flatnet-bench-lab-podman";

if (!isRoot()) {
  console.log("lab-podman bench skipped: it builds network namespaces and runs podman, which need root");
  process.exit(0);
}

function upAndCheck(runtime) {
  try {
    const up = flatnet(["lab", "up", "--runtime", runtime, "--nodes", "3", "--pods-per-node", "2", "--prefix", PREFIX, "--state-dir", STATE_DIR]).ms;
    const check = flatnet(["lab", "check", "--state-dir", STATE_DIR]).ms;
    return { up, check };
  } finally {
    flatnet(["lab", "down", "--state-dir", STATE_DIR, "--prefix", PREFIX]);
    rmSync(STATE_DIR, { recursive: true, force: true });
  }
}

const podman = { up: [], total: [] };
const netns = { up: [], total: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const [runtime, into] of [["podman", podman], ["netns", netns]]) {
    const { up, check } = upAndCheck(runtime);
    into.up.push(up);
    into.total.push(up + check);
    process.stderr.write(`round ${round + 1} ${runtime}: up ${(up / 1000).toFixed(2)} s, check ${(check / 1000).toFixed(2)} s\n`);
  }
}

const upPodman = median(podman.up) / 1000;
const totalPodman = median(podman.total) / 1000;
report("lab-podman", [
  { bench: "lab-podman", metric: `lab up --runtime podman, 3 nodes x 2 containers (median of ${ROUNDS}) / netns runtime`, value: upPodman, unit: "s", baseline: median(netns.up) / 1000, ratio: upPodman / (median(netns.up) / 1000), target: "<= 30 s", pass: upPodman <= 30 },
  { bench: "lab-podman", metric: "lab up --runtime podman + lab check, all 30 pairs verified (median) / netns runtime", value: totalPodman, unit: "s", baseline: median(netns.total) / 1000, ratio: totalPodman / (median(netns.total) / 1000), target: "", pass: true },
]);
