import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LabState } from "@flatnet/core";
import { loadState, lockLab, saveState, statePath } from "./state.ts";

const sample: LabState = {
  version: 1,
  prefix: "fn-",
  backend: "vxlan",
  dualStack: true,
  podsPerNode: 1,
  createdAt: "2026-11-26T05:00:00.000Z",
  clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"],
  namespaces: ["fn-underlay", "fn-node1", "fn-pod-node1-1"],
  nodes: [
    {
      name: "node1",
      index: 1,
      netns: "fn-node1",
      segment: 0,
      underlayIps: ["172.31.0.11", "fd00:172:31::11"],
      podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"],
      agent: { pid: 4242, startTime: "1234", socket: "/run/x/agents/node1.sock", log: "/run/x/logs/node1.log" },
    },
  ],
  pods: [
    { name: "pod-node1-1", netns: "fn-pod-node1-1", node: "node1", index: 1, containerId: "lab-fn-pod-node1-1", ifName: "eth0", ips: ["10.244.0.2", "fd00:10:244::2"] },
  ],
};

describe("lab state file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "fn-lab-state-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("round-trips through save and load", async () => {
    await saveState(dir, sample);
    expect(await loadState(dir)).toEqual(sample);
  });

  it("is absent before the first save", async () => {
    expect(await loadState(dir)).toBeUndefined();
  });

  it.each([
    ["not JSON", "{", `lab state file "PATH" is not JSON; run "flatnet lab down" to clear it`],
    ["a wrong version", JSON.stringify({ ...sample, version: 2 }), `lab state file "PATH" is invalid at "version"`],
    ["a bad backend", JSON.stringify({ ...sample, backend: "ipip" }), `lab state file "PATH" is invalid at "backend"`],
    ["a bad node", JSON.stringify({ ...sample, nodes: [{ name: "node1" }] }), `lab state file "PATH" is invalid at "nodes.0.index"`],
  ])("rejects %s with ERR_LAB_STATE naming the file and key", async (_, text, message) => {
    await writeFile(statePath(dir), text);
    await expect(loadState(dir)).rejects.toMatchObject({ code: "ERR_LAB_STATE", message: expect.stringContaining(message.replace("PATH", statePath(dir))) });
  });
});

describe("lab lock", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "fn-lab-lock-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("admits one holder at a time and frees on release", async () => {
    const release = await lockLab(dir);
    // The lock names a live holder (this process), so a second taker is refused.
    await expect(lockLab(dir)).rejects.toMatchObject({ code: "ERR_LAB_BUSY", message: expect.stringContaining(`locked by running process ${process.pid}`) });
    await release();
    const again = await lockLab(dir);
    await again();
  });

  it("takes over a lock left by a dead process", async () => {
    const child = spawn("true");
    const deadPid = await new Promise<number>((resolve) => child.on("exit", () => resolve(child.pid ?? 0)));
    await writeFile(join(dir, "lock"), String(deadPid));
    const release = await lockLab(dir);
    expect(await readFile(join(dir, "lock"), "utf8")).toBe(String(process.pid));
    await release();
  });
});
