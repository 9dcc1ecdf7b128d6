import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labDown, labUp } from "../../apps/agent/src/lab/lab.ts";
import { labCheck } from "./pod-checker/pod-checker.ts";
import { Progress } from "../../apps/agent/src/lab/progress.ts";
import { loadState, statePath } from "../../apps/agent/src/lab/state.ts";
import { flatnetCommand, isRecordedProcessAlive } from "../../apps/agent/src/lab/supervisor.ts";
import { listNamespaces } from "../../apps/agent/src/linux/index.ts";
import { createNamespaces, deleteNamespaces, listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";
import { isRoot, skipReason, tempStateDir } from "./lab-helpers.ts";

// up twice, up after a crash, down removing exactly the lab (recorded and leftover namespaces, processes), and
// the CLI's answers to bad input.
const PREFIX = "fn-e5-";
const DECOY = "fn-e5-keep"; // our test's own namespace that is not of a lab shape: down must not touch it
skipReason("lab lifecycle tests");

const flatnet = (args: string[]) => {
  const [node, main] = flatnetCommand();
  return spawnSync(node!, [main!, ...args], { encoding: "utf8" });
};

describe.skipIf(!isRoot)("flatnet lab lifecycle", () => {
  let stateDir: string;
  const lines: string[] = [];
  const progress = () => new Progress((line) => lines.push(line));

  beforeAll(async () => {
    stateDir = await tempStateDir(PREFIX);
    await createNamespaces([DECOY]);
  });

  afterAll(async () => {
    await labDown({ stateDir, prefix: PREFIX }).catch(() => {});
    await deleteNamespaces([DECOY]);
    await rm(stateDir, { recursive: true, force: true });
  });

  it("prints one line per step and, run twice with the same flags, leaves the healthy lab as it is", async () => {
    const first = await labUp({ nodes: 2, podsPerNode: 1, prefix: PREFIX, stateDir, progress: progress() });
    expect(lines.every((line) => /^\[\s*\d+\.\d{2}s\] \S/.test(line))).toBe(true);
    expect(lines.at(-1)).toContain(`lab "${PREFIX}" up: 2 nodes, 2 pods, backend host-gw`);
    lines.length = 0;
    const second = await labUp({ nodes: 2, podsPerNode: 1, prefix: PREFIX, stateDir, progress: progress() });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("already up with 2 nodes (host-gw); nothing to do");
    expect(second.nodes.map((node) => node.agent?.pid)).toEqual(first.nodes.map((node) => node.agent?.pid));
  }, 60_000);

  it("rebuilds after a crash that lost the state file, killing the orphaned agents", async () => {
    const old = (await loadState(stateDir))!;
    await rm(statePath(stateDir));
    lines.length = 0;
    const rebuilt = await labUp({ nodes: 2, podsPerNode: 1, prefix: PREFIX, stateDir, progress: progress() });
    expect(lines[0]).toContain("removed the previous lab");
    for (const node of old.nodes) expect(await isRecordedProcessAlive(node.agent!)).toBe(false);
    expect(rebuilt.nodes.every((node) => node.agent !== undefined)).toBe(true);
    expect((await labCheck({ stateDir })).ok).toBe(true);
  }, 60_000);

  it("rebuilds with other flags", async () => {
    const state = await labUp({ nodes: 2, podsPerNode: 2, backend: "vxlan", prefix: PREFIX, stateDir, progress: progress() });
    expect([state.backend, state.pods.length]).toEqual(["vxlan", 4]);
  }, 60_000);

  it("down removes the lab's processes, namespaces (also unrecorded leftovers) and state dir, and nothing else", async () => {
    const state = (await loadState(stateDir))!;
    await createNamespaces([`${PREFIX}pod-node9-1`]); // a leftover a crash could leave: of the lab's shape, unrecorded
    const report = await labDown({ stateDir, prefix: PREFIX });
    expect(report.namespaces.sort()).toEqual([...state.namespaces, `${PREFIX}pod-node9-1`].sort());
    for (const node of state.nodes) expect(await isRecordedProcessAlive(node.agent!)).toBe(false);
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
    expect(await listNamespaces()).toContain(DECOY);
    expect(existsSync(stateDir)).toBe(false);
  }, 60_000);

  it.each([
    [["lab", "up", "--nodes", "0", "--prefix", PREFIX], /^flatnet lab up: --nodes 0 is out of range; it must be an integer from 1 to 200\n$/],
    [["lab", "up", "--prefix", "FN_"], /^flatnet lab up: prefix "FN_" is invalid/],
    [["lab", "up", "--backend", "ipip"], /argument 'ipip' is invalid. Allowed choices are host-gw, vxlan, auto/],
    [["lab", "up", "--nodes", "two"], /--nodes "two" must be a non-negative integer/],
    [["lab", "status", "--state-dir", "/tmp/flatnet-no-such-lab"], /^flatnet lab status: no lab in "\/tmp\/flatnet-no-such-lab"; run "flatnet lab up" first\n$/],
    [["lab", "kill-agent", "node9", "--state-dir", "/tmp/flatnet-no-such-lab"], /^flatnet lab kill-agent: no lab in/],
    [["lab", "add-node", "--state-dir", "/tmp/flatnet-no-such-lab"], /^flatnet lab add-node: no lab in "\/tmp\/flatnet-no-such-lab"; run "flatnet lab up" first\n$/],
    [["lab", "remove-node", "node2", "--state-dir", "/tmp/flatnet-no-such-lab"], /^flatnet lab remove-node: no lab in/],
    [["lab", "check", "--state-dir", "/tmp/flatnet-no-such-lab"], /^flatnet lab check: no lab in/],
  ])("flatnet %j fails with a one-line message and no stack trace", (args, message) => {
    const result = flatnet(args);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join("/tmp/flatnet-no-such-lab"))).toBe(false);
  });
});
