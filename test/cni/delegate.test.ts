// The plugin's fast path: every command delegated to the agent's CNI worker, the in-process fallback when the agent is
// down (no socket, a stale socket), ADDs mixed between the worker and plugin processes on one IPAM database, and the
// worker SIGKILLed mid-ADD (then the agent SIGKILLed too) converging after a restart, DEL and GC.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IpamStore } from "../../apps/agent/src/ipam-store/store.ts";
import {
  NATIVE_CLIENT, installNativeClient, addressesOf, addUnderlay, createNamespaces, installPlugin, isRoot, linksOf, runPlugin, type RunningAgent, socketAnswers, startAgent, stopAgent, tempDir, waitFor,
} from "./helpers.ts";

const NODE = "fn-tf-d-node";
const PODS = ["fn-tf-d-a", "fn-tf-d-b"];
const NET = "fn-tf-deleg";

function linkMac(netns: string, name: string): string {
  const r = spawnSync("ip", ["-n", netns, "-json", "link", "show", "dev", name], { encoding: "utf8" });
  return (JSON.parse(r.stdout) as { address: string }[])[0]?.address ?? "";
}

if (!isRoot) console.log("skipping CNI delegated-mode tests: they need root (network namespaces)");

describe.skipIf(!isRoot)("flatnet CNI: delegated to the agent's CNI worker", { timeout: 180_000 }, () => {
  const data = tempDir("fn-tf-deleg-");
  const agentDir = join(data.path, "agent");
  const conf = (extra: Record<string, unknown> = {}, cniVersion = "1.1.0") =>
    JSON.stringify({ cniVersion, name: NET, type: "flatnet", podCidrs: ["10.77.0.0/24", "fd00:77::/64"], mtu: 1400, nodeNetns: NODE, dataDir: join(data.path, "ipam"), ...extra });
  const delegated = (extra: Record<string, unknown> = {}, cniVersion?: string) => conf({ agentSocket: join(agentDir, "agent-cni.sock"), ...extra }, cniVersion);
  const env = (command: string, pod: string, containerId: string, extra: Record<string, string> = {}) => ({
    CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: `/run/netns/${pod}`, CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni", FLATNET_CNI_TRACE: "1", ...extra,
  });
  const allocations = () => {
    const store = IpamStore.open(join(data.path, "ipam", NET, "ipam.db"));
    try {
      return store.list();
    } finally {
      store.close();
    }
  };
  const wasDelegated = (stderr: string) => /flatnet-cni: delegated to /.test(stderr);
  const ranInProcess = (stderr: string) => /flatnet-cni: in-process \(/.test(stderr);
  let cleanup = () => {};
  let plugin = "";
  let agent: RunningAgent | undefined;

  beforeAll(async () => {
    plugin = installPlugin(data.path);
    cleanup = createNamespaces([NODE, ...PODS]);
    addUnderlay(NODE, "10.86.0.1/24");
    agent = await startAgent(NODE, agentDir, plugin);
  }, 300_000);
  afterAll(async () => {
    if (agent !== undefined) await stopAgent(agent, "SIGKILL");
    cleanup();
    data.remove();
  });

  it("runs ADD, CHECK, STATUS, GC and DEL through the worker (1.1.0, 1.0.0, 0.4.0), with the in-process answers", async () => {
    expect(agent!.log()).toMatch(/flatnet-cni worker: serving .* \(ADD via rtnetlink\)/);
    for (const version of ["1.1.0", "1.0.0", "0.4.0"]) {
      const id = `all-${version}`;
      const add = await runPlugin(env("ADD", PODS[0]!, id), delegated({}, version), plugin);
      expect(add.stdout + add.stderr).toContain('"cniVersion"');
      expect(add.code).toBe(0);
      expect(wasDelegated(add.stderr)).toBe(true);
      expect(add.json?.cniVersion).toBe(version);
      const ips = (add.json?.ips as { address: string }[]).map((i) => i.address);
      expect(addressesOf(PODS[0]!, "eth0")).toEqual(ips);
      const macs = (add.json?.interfaces as { name: string; mac: string; sandbox?: string }[]).map((i) => i.mac);
      for (const mac of macs) expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(macs).toEqual([linkMac(NODE, (add.json?.interfaces as { name: string }[])[0]!.name), linkMac(PODS[0]!, "eth0")]);
      // A retried ADD (the runtime did not see the answer): same addresses, one interface pair.
      const again = await runPlugin(env("ADD", PODS[0]!, id), delegated({}, version), plugin);
      expect([again.code, wasDelegated(again.stderr)]).toEqual([0, true]);
      expect((again.json?.ips as { address: string }[]).map((i) => i.address)).toEqual(ips);
      expect(linksOf(NODE, "fnv").length).toBe(1);

      const check = await runPlugin(env("CHECK", PODS[0]!, id), delegated({ prevResult: add.json }, version), plugin);
      expect([check.code, check.stdout, wasDelegated(check.stderr)]).toEqual([0, "", true]);
      if (version === "1.1.0") {
        const status = await runPlugin(env("STATUS", PODS[0]!, id), delegated(), plugin);
        expect([status.code, wasDelegated(status.stderr)]).toEqual([0, true]);
        const gc = await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: "/usr/lib/cni", FLATNET_CNI_TRACE: "1" }, delegated({ "cni.dev/valid-attachments": [{ containerID: id, ifname: "eth0" }] }), plugin);
        expect([gc.code, gc.stdout, wasDelegated(gc.stderr)]).toEqual([0, "", true]);
        expect(allocations().map((a) => a.containerId)).toEqual([id, id]);
      }
      const del = await runPlugin(env("DEL", PODS[0]!, id), delegated({}, version), plugin);
      expect([del.code, del.stdout, wasDelegated(del.stderr)]).toEqual([0, "", true]);
      expect(linksOf(PODS[0]!, "eth0")).toEqual([]);
    }
    expect(allocations()).toEqual([]);
  });

  it("answers CNI errors from the worker as the plugin would (code, message, exit 1), not as a fallback", async () => {
    // A netns the runtime's side cannot stat has no identity to send: the worker declines it (issue 11), and the
    // in-process plugin gives the same answer.
    const cases: { name: string; env: Record<string, string>; stdin: string; code: number; msg: RegExp; viaWorker: boolean }[] = [
      { name: "missing CNI_CONTAINERID", env: { CNI_COMMAND: "ADD", CNI_NETNS: `/run/netns/${PODS[0]}`, CNI_IFNAME: "eth0", FLATNET_CNI_TRACE: "1" }, stdin: delegated(), code: 4, msg: /CNI_CONTAINERID/, viaWorker: true },
      { name: "netns that does not exist", env: env("ADD", "fn-tf-d-missing", "e1"), stdin: delegated(), code: 4, msg: /fn-tf-d-missing/, viaWorker: false },
      { name: "bad mtu", env: env("ADD", PODS[0]!, "e2"), stdin: delegated({ mtu: 10 }), code: 7, msg: /mtu/, viaWorker: true },
      { name: "unsupported version", env: env("ADD", PODS[0]!, "e3"), stdin: delegated({}, "0.3.1"), code: 1, msg: /0\.3\.1/, viaWorker: true },
    ];
    for (const c of cases) {
      const run = await runPlugin(c.env, c.stdin, plugin);
      expect([c.name, run.code, run.json?.code, wasDelegated(run.stderr)]).toEqual([c.name, 1, c.code, c.viaWorker]);
      expect(String(run.json?.msg)).toMatch(c.msg);
    }
    expect(allocations()).toEqual([]);
  });

  it("concurrent ADDs mixed between the worker and plugin processes get distinct IPs; mixed DELs release all", async () => {
    const N = 200; // the crash suite's 200 concurrent ADDs, half through the worker, half in plugin processes
    const pods = Array.from({ length: N }, (_, i) => `fn-tf-d-m${i}`);
    expect(spawnSync("ip", ["-batch", "-"], { input: pods.map((p) => `netns add ${p}`).join("\n") + "\n" }).status).toBe(0);
    try {
      const adds = await Promise.all(pods.map((pod, i) => runPlugin(env("ADD", pod, `mix-${i}`), i % 2 === 0 ? delegated() : conf(), plugin)));
      expect(adds.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
      expect(adds.filter((r) => wasDelegated(r.stderr)).length).toBe(N / 2);
      const v4 = adds.map((r) => (r.json?.ips as { address: string }[])[0]!.address);
      const v6 = adds.map((r) => (r.json?.ips as { address: string }[])[1]!.address);
      expect(new Set(v4).size).toBe(N);
      expect(new Set(v6).size).toBe(N);
      expect(allocations().length).toBe(2 * N);
      for (const i of [0, 1, 117, N - 1]) expect(addressesOf(pods[i]!, "eth0")).toEqual([v4[i], v6[i]]);
      const dels = await Promise.all(pods.map((pod, i) => runPlugin(env("DEL", pod, `mix-${i}`), i % 2 === 1 ? delegated() : conf(), plugin)));
      expect(dels.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
      expect(allocations()).toEqual([]);
      expect(linksOf(NODE, "fnv")).toEqual([]);
    } finally {
      spawnSync("ip", ["-batch", "-"], { input: pods.map((p) => `netns del ${p}`).join("\n") + "\n" });
    }
  });

  it("falls back to in-process work when the agent is down (no socket, then a stale socket file), and back when it returns", async () => {
    await stopAgent(agent!, "SIGTERM");
    expect(existsSync(agent!.cniSocket)).toBe(false); // the worker removed its socket on the way out
    const add = await runPlugin(env("ADD", PODS[1]!, "down-1"), delegated(), plugin);
    expect([add.code, ranInProcess(add.stderr), wasDelegated(add.stderr)]).toEqual([0, true, false]);
    expect(add.stderr).toMatch(/ENOENT/);
    // A socket nobody listens on (a SIGKILLed worker leaves its file): connection refused, same fallback.
    const stale = join(data.path, "stale-cni.sock");
    const listener = spawnSync(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(stale)}, function () { process.exit(0) })`]);
    expect(listener.status).toBe(0);
    expect(existsSync(stale) && !(await socketAnswers(stale))).toBe(true);
    const del = await runPlugin(env("DEL", PODS[1]!, "down-1"), conf({ agentSocket: stale }), plugin);
    expect([del.code, ranInProcess(del.stderr)]).toEqual([0, true]);
    expect(del.stderr).toMatch(/ECONNREFUSED/);
    expect(allocations()).toEqual([]);

    agent = await startAgent(NODE, agentDir, plugin);
    const again = await runPlugin(env("ADD", PODS[1]!, "down-2"), delegated(), plugin);
    expect([again.code, wasDelegated(again.stderr)]).toEqual([0, true]);
    const del2 = await runPlugin(env("DEL", PODS[1]!, "down-2"), delegated(), plugin);
    expect(del2.code).toBe(0);
    expect(allocations()).toEqual([]);
  });

  it("a worker SIGKILLed mid-ADD (and the agent SIGKILLed after) leaves no duplicate and no leak after restart, DEL and GC", async () => {
    for (const point of ["after-alloc", "after-attach"]) {
      await stopAgent(agent!, "SIGTERM");
      agent = await startAgent(NODE, agentDir, plugin, { FLATNET_CNI_CRASH_AT: point });
      const id = `crash-${point}`;
      const crashed = await runPlugin(env("ADD", PODS[0]!, id), delegated(), plugin);
      // The request reached the worker, which died: "try again" (11), never a fallback that races a half-done ADD.
      expect([point, crashed.code, crashed.json?.code]).toEqual([point, 1, 11]);
      const held = allocations().filter((a) => a.containerId === id);
      expect(held.length).toBe(2); // reserved: never given to another pod before DEL/GC
      const pid = agent!.proc.pid!;
      await stopAgent(agent!, "SIGKILL");
      // The worker was the agent's child: it notices the agent is gone and leaves (bounded poll on its socket).
      await waitFor("the orphaned worker to go", async () => !(await socketAnswers(join(agentDir, "agent-cni.sock"))));
      expect(pid).toBeGreaterThan(0);

      agent = await startAgent(NODE, agentDir, plugin);
      const other = await runPlugin(env("ADD", PODS[1]!, `other-${point}`), delegated(), plugin);
      expect(other.code).toBe(0);
      const otherIps = (other.json?.ips as { address: string }[]).map((i) => i.address.split("/")[0]);
      expect(otherIps.some((ip) => held.some((h) => h.ip === ip))).toBe(false);
      // What a runtime does after a failed ADD: DEL (through the restarted worker); then GC with the live list.
      const del = await runPlugin(env("DEL", PODS[0]!, id), delegated(), plugin);
      expect(del.code).toBe(0);
      const gc = await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: "/usr/lib/cni" }, delegated({ "cni.dev/valid-attachments": [{ containerID: `other-${point}`, ifname: "eth0" }] }), plugin);
      expect(gc.code).toBe(0);
      expect(allocations().map((a) => a.containerId)).toEqual([`other-${point}`, `other-${point}`]);
      expect(linksOf(NODE, "fnv").length).toBe(1);
      expect(linksOf(PODS[0]!, "eth0")).toEqual([]);
      expect((await runPlugin(env("DEL", PODS[1]!, `other-${point}`), delegated(), plugin)).code).toBe(0);
    }
    expect(allocations()).toEqual([]);
    expect(linksOf(NODE, "fnv")).toEqual([]);
  });

  it.skipIf(!existsSync(NATIVE_CLIENT))("the native client: every command through the worker, errors as the plugin's, VERSION and agent-down through flatnet-bun", async () => {
    const native = installNativeClient(join(data.path, "native"));
    // Delegated calls run no Bun process, so the plugin's trace (FLATNET_CNI_TRACE) stays silent; in-process ones trace.
    const add = await runPlugin(env("ADD", PODS[0]!, "native-1"), delegated(), native);
    expect([add.code, add.stderr]).toEqual([0, ""]);
    const ips = (add.json?.ips as { address: string }[]).map((i) => i.address);
    expect(addressesOf(PODS[0]!, "eth0")).toEqual(ips);
    const check = await runPlugin(env("CHECK", PODS[0]!, "native-1"), delegated({ prevResult: add.json }), native);
    expect([check.code, check.stdout, check.stderr]).toEqual([0, "", ""]);
    const status = await runPlugin(env("STATUS", PODS[0]!, "native-1"), delegated(), native);
    expect([status.code, status.stderr]).toEqual([0, ""]);
    // No identity for a netns it cannot stat: the worker declines and flatnet-bun answers in-process (it traces).
    const bad = await runPlugin(env("ADD", "fn-tf-d-missing", "native-2"), delegated(), native);
    expect([bad.code, bad.json?.code, bad.stderr.includes("flatnet-cni: start")]).toEqual([1, 4, true]);
    const version = await runPlugin({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.0.0"}', native);
    expect([version.code, version.json]).toEqual([0, { cniVersion: "1.0.0", supportedVersions: ["0.4.0", "1.0.0", "1.1.0"] }]);
    // A config with quotes and escapes travels intact (JSON-escaped by the client, parsed by the worker).
    const escaped = await runPlugin(env("ADD", PODS[1]!, "native-3"), delegated({ dns: { nameservers: ["10.96.0.10"], search: ['a"b\\c\u00e9'] } }), native);
    expect([escaped.code, escaped.stderr]).toEqual([0, ""]);
    expect((escaped.json?.dns as { search: string[] }).search).toEqual(['a"b\\c\u00e9']);
    for (const [pod, id] of [[PODS[0]!, "native-1"], [PODS[1]!, "native-3"]] as const) {
      const del = await runPlugin(env("DEL", pod, id), delegated(), native);
      expect([del.code, del.stdout, del.stderr]).toEqual([0, "", ""]);
    }
    expect(allocations()).toEqual([]);

    await stopAgent(agent!, "SIGTERM");
    const down = await runPlugin(env("ADD", PODS[0]!, "native-4"), delegated(), native);
    expect(down.code).toBe(0);
    expect(down.stderr).toMatch(/flatnet-cni: start at/); // flatnet-bun did it, stdin re-fed intact
    expect((await runPlugin(env("DEL", PODS[0]!, "native-4"), delegated(), native)).code).toBe(0);
    expect(allocations()).toEqual([]);
    agent = await startAgent(NODE, agentDir, plugin);
  });
});
