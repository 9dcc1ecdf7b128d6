// Long-lived ip/bridge batch sessions against a real namespace: sentinel, error mapping, respawn, timeout, no leaks.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { type KernelState, type NetworkOptions, computeNodeNetwork, diffNetwork, sortKernelState } from "@flatnet/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchSession, KernelCommandError, NetnsBatchSessions, applyKernelPlan, readKernelState } from "../../apps/agent/src/linux/index.ts";
import { skipReason } from "./netns.ts";

// This file's own prefix (the batch-session suite): nothing else is created or removed.
const NS = "fn-tb-session";

function sh(file: string, args: string[], input?: string): string {
  return execFileSync(file, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** PIDs of processes whose command line names this suite's namespace (a leaked session child would be one). */
function processesIn(netns: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if ((argv[0] === "ip" || argv[0] === "bridge") && argv.includes(netns)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Polls `condition` (real state, no sleeps standing in for it) until it holds or `attempts` run out. */
async function until(condition: () => boolean, attempts = 500): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return condition();
}

const routes = (): string[] => (JSON.parse(sh("ip", ["-n", NS, "-json", "route", "show", "proto", "77"]) || "[]") as { dst: string }[]).map((r) => r.dst).sort();

describe.skipIf(skipReason !== undefined)("batch session: long-lived ip/bridge -batch children", () => {
  const sessions: BatchSession[] = [];
  const open = (tool: "ip" | "bridge"): BatchSession => {
    const session = new BatchSession(tool, NS);
    sessions.push(session);
    return session;
  };

  beforeAll(() => {
    spawnSync("ip", ["netns", "del", NS], { stdio: "ignore" });
    sh("ip", ["netns", "add", NS]);
    sh("ip", ["-n", NS, "-batch", "-"], "link set lo up\nlink add eth0 type veth peer name ul0\naddr add 172.31.0.11/24 dev eth0\nlink set eth0 up\nlink set ul0 up\n" +
      "link add flatnet.1 type vxlan id 1 dstport 8472 local 172.31.0.11 dev eth0 nolearning\nlink set flatnet.1 up\n");
  });

  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    spawnSync("ip", ["netns", "del", NS], { stdio: "ignore" });
  });

  it("answers each group after its sentinel, in one child, in call order", async () => {
    const ip = open("ip");
    const first = await ip.run(["route replace 10.9.1.0/24 dev eth0 proto 77"]);
    const pid = ip.pid;
    expect(first).toEqual({ stdout: "", stderr: "", exitCode: 0, failures: [] });
    expect(routes()).toEqual(["10.9.1.0/24"]);
    // Groups issued together run one after the other; the second sees the first's route.
    const [a, b, empty] = await Promise.all([
      ip.run(["route replace 10.9.2.0/24 dev eth0 proto 77", "route replace 10.9.3.0/24 dev eth0 proto 77"]),
      ip.run(["route del 10.9.2.0/24 proto 77"]),
      ip.run([]),
    ]);
    expect([a.exitCode, b.exitCode, empty.exitCode]).toEqual([0, 0, 0]);
    expect(routes()).toEqual(["10.9.1.0/24", "10.9.3.0/24"]);
    expect(ip.pid).toBe(pid);
    await ip.close();
  });

  it.each([
    {
      tool: "ip" as const,
      lines: ["route replace 10.9.4.0/24 dev eth0 proto 77", "route replace 10.9.5.0/24 dev nosuch proto 77", "route del 10.99.0.0/24 proto 77", "route replace 10.9.6.0/24 dev eth0 proto 77"],
      failures: [
        { line: 2, command: "route replace 10.9.5.0/24 dev nosuch proto 77", message: 'Cannot find device "nosuch"' },
        { line: 3, command: "route del 10.99.0.0/24 proto 77", message: "RTNETLINK answers: No such process" },
      ],
    },
    {
      tool: "bridge" as const,
      lines: ["fdb replace 0a:58:0a:f4:02:01 dev flatnet.1 dst 172.31.0.12 self permanent", "fdb add 0a:58:0a:f4:02:02 dev nosuch dst 172.31.0.13 self permanent"],
      failures: [{ line: 2, command: "fdb add 0a:58:0a:f4:02:02 dev nosuch dst 172.31.0.13 self permanent", message: 'Cannot find device "nosuch"' }],
    },
  ])("$tool: maps refused lines to the group's own line numbers, group after group", async ({ tool, lines, failures }) => {
    const session = open(tool);
    // Earlier groups shift the line count (a sentinel each); the numbers reported must not shift with them.
    const mixed = await session.run([...lines.slice(0, 1), ...lines.slice(0, 1)]);
    expect(mixed.failures).toEqual([]);
    const pids: number[] = [];
    for (let group = 0; group < 3; group++) {
      const result = await session.run(lines);
      pids.push(session.pid!);
      expect(result.failures).toEqual(failures);
      expect(result.exitCode).toBe(1);
    }
    // A group with a refused line retires its child (a stale name cache must not outlive one failed sync).
    expect(new Set(pids).size).toBe(3);
    await session.close();
  });

  it("a line that ends the tool (no Command failed) fails the group, and the next group runs in a new child", async () => {
    const ip = open("ip");
    await ip.run([]);
    const pid = ip.pid!;
    const result = await ip.run(["route replace 10.9.7.0/24 dev eth0 proto 77", "route replace 10.0.0.0/33 dev eth0 proto 77", "route replace 10.9.8.0/24 dev eth0 proto 77"]);
    expect(result.exitCode).not.toBe(0);
    expect(result.failures).toEqual([]);
    expect(result.stderr.trim().split("\n")).toEqual(['Error: any valid prefix is expected rather than "10.0.0.0/33".', expect.stringMatching(/^ip exited with \d+ before the batch finished$/)]);
    expect(routes()).toContain("10.9.7.0/24");
    expect(routes()).not.toContain("10.9.8.0/24");
    expect(await ip.run(["route replace 10.9.8.0/24 dev eth0 proto 77"])).toEqual({ stdout: "", stderr: "", exitCode: 0, failures: [] });
    expect(ip.pid).not.toBe(pid);
    expect(isAlive(pid)).toBe(false);
    await ip.close();
  });

  it("a device recreated by someone else: a stale ifindex fails one group only; a group that adds the link runs fresh", async () => {
    const vxlan = "type vxlan id 7 dstport 4790 local 172.31.0.11 dev eth0";
    sh("ip", ["-n", NS, "link", "add", "vxtb", ...vxlan.split(" ")]);
    const ip = open("ip");
    expect((await ip.run(["addr replace 10.9.20.1/32 dev vxtb"])).failures).toEqual([]);
    sh("ip", ["-n", NS, "-batch", "-"], `link del vxtb\nlink add vxtb ${vxlan}\n`);
    // iproute2 still holds the old ifindex for "vxtb": this is the failure the retiring exists for.
    const stale = await ip.run(["addr replace 10.9.20.2/32 dev vxtb"]);
    expect(stale.failures).toEqual([{ line: 1, command: "addr replace 10.9.20.2/32 dev vxtb", message: "Error: ipv4: Device not found." }]);
    expect((await ip.run(["addr replace 10.9.20.2/32 dev vxtb"])).failures).toEqual([]);
    // Deleted outside, recreated by a plan: the group with "link add" runs in a fresh child, so the lines after it work.
    sh("ip", ["-n", NS, "link", "del", "vxtb"]);
    expect((await ip.run([`link add vxtb ${vxlan}`, "link set dev vxtb up", "addr replace 10.9.20.3/32 dev vxtb"])).failures).toEqual([]);
    const addresses = JSON.parse(sh("ip", ["-n", NS, "-json", "-4", "addr", "show", "dev", "vxtb"])) as { addr_info: { local: string }[] }[];
    expect(addresses[0]!.addr_info.map((a) => a.local)).toEqual(["10.9.20.3"]);
    sh("ip", ["-n", NS, "link", "del", "vxtb"]);
    await ip.close();
  });

  it("a group that recreates a link retires the other tool's child of the namespace too", async () => {
    const vxlan = "type vxlan id 8 dstport 4791 local 172.31.0.11 dev eth0 nolearning";
    const fdb = (dst: string) => `fdb append 00:00:00:00:00:00 dev vxtc dst ${dst} self permanent`;
    sh("ip", ["-n", NS, "link", "add", "vxtc", ...vxlan.split(" ")]);
    const both = new NetnsBatchSessions(NS);
    try {
      expect((await both.run("bridge", [fdb("172.31.0.21")])).failures).toEqual([]);
      const bridgePid = both.session("bridge").pid;
      sh("ip", ["-n", NS, "link", "del", "vxtc"]);
      expect((await both.run("ip", [`link add vxtc ${vxlan}`, "link set dev vxtc up"])).failures).toEqual([]);
      expect((await both.run("bridge", [fdb("172.31.0.22")])).failures).toEqual([]);
      expect(both.session("bridge").pid).not.toBe(bridgePid);
      expect(sh("bridge", ["-n", NS, "fdb", "show", "dev", "vxtc"]).trim()).toBe("00:00:00:00:00:00 dst 172.31.0.22 self permanent");
    } finally {
      await both.close();
      spawnSync("ip", ["-n", NS, "link", "del", "vxtc"], { stdio: "ignore" });
    }
  });

  it.each([
    { name: "a refused line", lines: ["addr replace 10.9.21.2/32 dev vxtd", "route replace 10.9.22.0/24 dev vxtd proto 77"] },
    // A neighbour line naming a stale ifindex ends ip altogether: the lines after it never ran.
    { name: "a line that ended the child", lines: ["neigh replace 10.9.21.9 lladdr 0a:58:0a:f4:02:09 dev vxtd nud permanent", "addr replace 10.9.21.2/32 dev vxtd"] },
  ])("NetnsBatchSessions: a device recreated outside is applied to at once ($name)", async ({ lines }) => {
    const vxlan = "type vxlan id 9 dstport 4792 local 172.31.0.11 dev eth0 nolearning";
    sh("ip", ["-n", NS, "link", "add", "vxtd", ...vxlan.split(" ")]);
    const both = new NetnsBatchSessions(NS);
    try {
      expect((await both.run("ip", ["addr replace 10.9.21.1/32 dev vxtd", "link set dev vxtd up"])).failures).toEqual([]);
      sh("ip", ["-n", NS, "-batch", "-"], `link del vxtd\nlink add vxtd ${vxlan}\nlink set dev vxtd up\n`);
      expect(await both.run("ip", lines)).toEqual({ stdout: "", stderr: "", exitCode: 0, failures: [] });
      const addresses = JSON.parse(sh("ip", ["-n", NS, "-json", "-4", "addr", "show", "dev", "vxtd"])) as { addr_info: { local: string }[] }[];
      expect(addresses[0]!.addr_info.map((a) => a.local)).toEqual(["10.9.21.2"]);
    } finally {
      await both.close();
      spawnSync("ip", ["-n", NS, "link", "del", "vxtd"], { stdio: "ignore" });
    }
  });

  it.each(["ip", "bridge"] as const)("%s: respawns after its child is killed", async (tool) => {
    const session = open(tool);
    await session.run([]);
    const pid = session.pid!;
    process.kill(pid, "SIGKILL");
    expect(await until(() => session.pid === undefined)).toBe(true);
    const line = tool === "ip" ? "route replace 10.9.9.0/24 dev eth0 proto 77" : "fdb append 00:00:00:00:00:00 dev flatnet.1 dst 172.31.0.14 self permanent";
    expect((await session.run([line])).failures).toEqual([]);
    expect(session.pid).toBeDefined();
    expect(session.pid).not.toBe(pid);
    await session.close();
  });

  it("a group the child never answers times out: the child is killed and the next group gets a new one", async () => {
    const ip = open("ip");
    await ip.run([]);
    const pid = ip.pid!;
    process.kill(pid, "SIGSTOP"); // a stopped child never reaches the sentinel
    const error = await ip.run(["route replace 10.9.10.0/24 dev eth0 proto 77"], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelCommandError);
    expect((error as KernelCommandError).message).toMatch(/no answer to the batch within 300 ms; the session was killed/);
    expect(await until(() => !isAlive(pid))).toBe(true);
    expect((await ip.run(["route replace 10.9.10.0/24 dev eth0 proto 77"])).exitCode).toBe(0);
    expect(ip.pid).not.toBe(pid);
    await ip.close();
  });

  it("close ends every child it started and leaves no process behind", async () => {
    await Promise.all(sessions.map((s) => s.close())); // what earlier tests left open, had one failed before its close
    const both = new NetnsBatchSessions(NS);
    await Promise.all([both.run("ip", []), both.run("bridge", [])]);
    const pids = [both.session("ip").pid!, both.session("bridge").pid!];
    expect(pids.every(isAlive)).toBe(true);
    expect(processesIn(NS).sort()).toEqual([...pids].sort());
    await both.close();
    expect(pids.map(isAlive)).toEqual([false, false]);
    expect(processesIn(NS)).toEqual([]);
    expect([both.session("ip").pid, both.session("bridge").pid]).toEqual([undefined, undefined]);
  });

  it("applyKernelPlan through sessions programs the same state as the one-shot path", async () => {
    sh("ip", ["-n", NS, "link", "del", "flatnet.1"]);
    const options: NetworkOptions = { backend: "vxlan", vni: 1, vxlanPort: 8472, underlayDevice: "eth0", underlayMtu: 1500, underlaySubnets: [], vxlanDevice: "flatnet.1" };
    const nodes = Array.from({ length: 4 }, (_, i) => ({ name: `node-${i + 1}`, underlayIps: [`172.31.0.${11 + i}`], podCidrs: [`10.244.${i + 1}.0/24`] }));
    const computed = computeNodeNetwork({ clusterCidrs: ["10.244.0.0/16"], nodes }, "node-1", options);
    if (!computed.success) throw new Error(computed.error.message);
    const { vxlan, routes: desiredRoutes, neighbours, fdb } = computed.data;
    const desired: KernelState = { vxlan: vxlan!, routes: desiredRoutes, neighbours, fdb };
    const both = new NetnsBatchSessions(NS);
    try {
      for (let pass = 0; pass < 3; pass++) {
        const plan = diffNetwork(desired, await readKernelState(NS));
        if (plan.steps.length === 0) break;
        await applyKernelPlan(NS, plan, both.run);
      }
      expect(sortKernelState(await readKernelState(NS))).toEqual(sortKernelState(desired));
    } finally {
      await both.close();
    }
  });
});
