import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { agentHealthFromProcess, labPodShell, processStartTime, type RecordedAgent } from "./lab-source.ts";

const hasProc = processStartTime(process.pid) !== undefined;
if (!hasProc) console.log("lab-source process tests skipped: no /proc on this system");

describe.skipIf(!hasProc)("agent health from the recorded process", () => {
  const dir = mkdtempSync(join(tmpdir(), "fn-tq-lab-source-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, "agent.sock");
  writeFileSync(socket, "");
  const self = process.pid;
  const started = processStartTime(self)!;
  // A process that has exited and been reaped: its PID is no longer there.
  const gone = spawnSync("true").pid!;

  it.each<[string, RecordedAgent | undefined, string]>([
    ["no agent recorded", undefined, "unknown"],
    ["no pid recorded", { socket }, "unknown"],
    ["same pid and start time, socket present", { pid: self, startTime: started, socket }, "healthy"],
    ["same pid and start time, socket missing", { pid: self, startTime: started, socket: join(dir, "missing.sock") }, "degraded"],
    ["pid reused by another process (start time differs)", { pid: self, startTime: String(Number(started) + 1), socket }, "down"],
    ["process gone", { pid: gone, startTime: started, socket }, "down"],
    ["no start time recorded: pid alone decides", { pid: self, socket }, "healthy"],
    ["no start time recorded, process gone", { pid: gone, socket }, "down"],
  ])("%s -> %s", (_name, agent, health) => {
    expect(agentHealthFromProcess(agent)).toBe(health);
  });

});

describe("labPodShell", () => {
  const state = {
    pods: [
      { name: "pod-node1-0", node: "node1", ips: ["10.244.1.2"], netns: "fn-pod-node1-0" },
      { name: "old", node: "node1", ips: [] },
      { name: "evil", node: "node1", ips: [], netns: "x; rm -rf /" },
    ],
  };
  it.each([
    ["root runs ip directly", "pod-node1-0", 0, { shellPath: "ip", shellArgs: ["netns", "exec", "fn-pod-node1-0", "sh"] }],
    ["others go through sudo", "pod-node1-0", 1000, { shellPath: "sudo", shellArgs: ["ip", "netns", "exec", "fn-pod-node1-0", "sh"] }],
    ["an unknown pod is named with the lab's pods", "nope", 0, { error: 'pod "nope" is not in the lab (pods: pod-node1-0, old, evil)' }],
    ["a state without the netns", "old", 0, { error: 'pod "old" has no usable network namespace in the lab state (netns undefined)' }],
    ["a netns name that is not a name", "evil", 0, { error: 'pod "evil" has no usable network namespace in the lab state (netns "x; rm -rf /")' }],
  ])("%s", (_, pod, uid, expected) => {
    expect(labPodShell(state, pod, uid)).toEqual(expected);
  });
});
