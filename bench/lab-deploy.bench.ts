// lab-deploy: wall time of `flatnet lab up --deploy` (3 nodes, each running the DaemonSet of deploy/*.yaml under its
// podman from localhost/flatnet:dev, image already built, against the fake kube-apiserver of test/ on a unix socket)
// plus `flatnet lab check` until every pair is verified. Target (issue 11): <= 90 s. Baseline, same run: the same
// lab with `--runtime podman` (the agents as processes, pods from podman). Run as root.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../apps/agent/src/lab/exec.ts";
import { FakeApiServer } from "../test/fake-apiserver/fake-apiserver.ts";
import { flatnetMain, isRoot, median, report, root } from "./lab-harness.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 2);
const PREFIX = "fn-dpl-b-";
const IMAGE = process.env.FLATNET_DEPLOY_IMAGE ?? "localhost/flatnet:dev";

if (!isRoot()) {
  console.log("lab-deploy bench skipped: it builds network namespaces and runs podman, which need root");
  process.exit(0);
}
if (spawnSync("podman", ["image", "exists", IMAGE]).status !== 0) {
  console.log(`lab-deploy bench skipped: ${IMAGE} is not built (npm run image)`);
  process.exit(0);
}

// Asynchronous: the fake API server answers from this very process while the CLI runs.
async function flatnet(args: string[]): Promise<number> {
  const started = performance.now();
  await run(process.execPath, [flatnetMain, ...args], { timeoutMs: 300_000 });
  return performance.now() - started;
}

async function upAndCheck(deploy: boolean): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), "fn-dp-bench-"));
  const stateDir = join(scratch, "lab");
  const api = new FakeApiServer();
  const socket = join(scratch, "api.sock");
  await api.start(socket);
  try {
    const how = deploy ? ["--deploy", join(root, "deploy"), "--kube-api-socket", socket, "--image", IMAGE] : ["--runtime", "podman"];
    const up = await flatnet(["lab", "up", ...how, "--nodes", "3", "--pods-per-node", "2", "--prefix", PREFIX, "--state-dir", stateDir]);
    return up + (await flatnet(["lab", "check", "--state-dir", stateDir]));
  } finally {
    await flatnet(["lab", "down", "--state-dir", stateDir, "--prefix", PREFIX]).catch(() => 0);
    await api.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

const deployed: number[] = [];
const podman: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const [deploy, into] of [[true, deployed], [false, podman]] as const) {
    const ms = await upAndCheck(deploy);
    into.push(ms);
    process.stderr.write(`round ${round + 1} ${deploy ? "--deploy" : "--runtime podman"}: up + check ${(ms / 1000).toFixed(2)} s\n`);
  }
}

const value = median(deployed) / 1000;
const baseline = median(podman) / 1000;
report("lab-deploy", [
  { bench: "lab-deploy", metric: `lab up --deploy + lab check, 3 nodes x 2 pods, all 30 pairs verified (median of ${ROUNDS}) / --runtime podman`, value, unit: "s", baseline, ratio: value / baseline, target: "<= 90 s", pass: value <= 90 },
]);
