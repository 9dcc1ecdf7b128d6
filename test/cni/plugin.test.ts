// The flatnet CNI plugin binary against real network namespaces: every command in every supported version, bad inputs.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IpamStore } from "../../apps/agent/src/ipam-store/store.ts";
import { addressesOf, createNamespaces, installPlugin, isRoot, linksOf, runPlugin, sh, tempDir } from "./helpers.ts";

const NODE = "fn-tc-p-node";
const PODS = Array.from({ length: 6 }, (_, i) => `fn-tc-p-pod${i}`);
const VERSIONS = ["0.4.0", "1.0.0", "1.1.0"] as const;

if (!isRoot) console.log("skipping CNI plugin kernel tests: they need root (network namespaces)");

describe.skipIf(!isRoot)("flatnet CNI plugin", { timeout: 120_000 }, () => {
  let cleanup = () => {};
  let plugin = "";
  const data = tempDir("fn-tc-cni-");
  const conf = (version: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      cniVersion: version,
      name: "fn-tc-net",
      type: "flatnet",
      podCidrs: ["10.77.1.0/24", "fd00:77:1::/64"],
      mtu: 1400,
      nodeNetns: NODE,
      dataDir: join(data.path, "ipam"),
      ...extra,
    });
  const env = (command: string, pod: string, containerId: string, extra: Record<string, string | undefined> = {}) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: `/run/netns/${pod}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
    ...extra,
  });
  const allocations = () => {
    const store = IpamStore.open(join(data.path, "ipam", "fn-tc-net", "ipam.db"));
    try {
      return store.list();
    } finally {
      store.close();
    }
  };

  beforeAll(() => {
    plugin = installPlugin(data.path);
    cleanup = createNamespaces([NODE, ...PODS]);
  }, 300_000);
  afterAll(() => {
    cleanup();
    data.remove();
  });

  it.each(VERSIONS)("VERSION answers in %s with every supported version", async (version) => {
    const run = await runPlugin({ CNI_COMMAND: "VERSION" }, JSON.stringify({ cniVersion: version }), plugin);
    expect(run.code).toBe(0);
    expect(run.json).toEqual({ cniVersion: version, supportedVersions: ["0.4.0", "1.0.0", "1.1.0"] });
  });

  it.each(VERSIONS.map((v, i) => [v, i] as const))("ADD, CHECK, DEL, DEL in %s: result in that version, pod configured, then gone", async (version, i) => {
    const pod = PODS[i]!;
    const id = `ctr-${version.replaceAll(".", "")}`;
    const add = await runPlugin(env("ADD", pod, id), conf(version), plugin);
    expect(add.code, add.stdout).toBe(0);
    const result = add.json as { cniVersion: string; interfaces: { name: string; mac: string; sandbox?: string; mtu?: number }[]; ips: Record<string, unknown>[]; routes: Record<string, unknown>[] };
    expect(result.cniVersion).toBe(version);
    const [v4, v6] = [`10.77.1.${2 + i}/24`, `fd00:77:1::${2 + i}/64`];
    const ip = (address: string, gateway: string, family: string) =>
      version === "0.4.0" ? { version: family, address, gateway, interface: 1 } : { address, gateway, interface: 1 };
    expect(result.ips).toEqual([ip(v4, "10.77.1.1", "4"), ip(v6, "fd00:77:1::1", "6")]);
    expect(result.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.77.1.1" }, { dst: "::/0", gw: "fd00:77:1::1" }]);
    expect(result.interfaces[1]).toMatchObject({ name: "eth0", sandbox: `/run/netns/${pod}` });
    expect("mtu" in result.interfaces[1]!).toBe(version === "1.1.0"); // interfaces[].mtu is a 1.1.0 field
    expect(addressesOf(pod, "eth0")).toEqual([v4, v6]);
    const hostIf = result.interfaces[0]!.name;
    expect(linksOf(NODE, "fnv")).toContain(hostIf);

    const check = await runPlugin(env("CHECK", pod, id), conf(version, { prevResult: result }), plugin);
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toBe("");

    const del = await runPlugin(env("DEL", pod, id), conf(version, { prevResult: result }), plugin);
    expect(del.code, del.stdout).toBe(0);
    expect(linksOf(NODE, "fnv")).not.toContain(hostIf);
    expect(linksOf(pod)).toEqual(["lo"]);
    expect(allocations().filter((a) => a.containerId === id)).toEqual([]);
    const again = await runPlugin(env("DEL", pod, id), conf(version), plugin);
    expect(again.code, again.stdout).toBe(0);

    const stale = await runPlugin(env("CHECK", pod, id), conf(version, { prevResult: result }), plugin);
    expect(stale.code).toBe(1);
    expect(stale.json).toMatchObject({ cniVersion: version, code: 102 });
  });

  it("CHECK reports a pod whose default route was removed, naming the route", async () => {
    const pod = PODS[3]!;
    const add = await runPlugin(env("ADD", pod, "ctr-check"), conf("1.1.0"), plugin);
    expect(add.code, add.stdout).toBe(0);
    sh("ip", ["-n", pod, "route", "del", "default"]);
    const check = await runPlugin(env("CHECK", pod, "ctr-check"), conf("1.1.0", { prevResult: add.json }), plugin);
    expect(check.json).toMatchObject({ code: 102 });
    expect(String(check.json?.msg)).toContain("0.0.0.0/0 via 10.77.1.1");
    expect((await runPlugin(env("DEL", pod, "ctr-check"), conf("1.1.0"), plugin)).code).toBe(0);
  });

  it("ADD, CHECK and DEL with CNI_NETNS given as /proc/PID/ns/net (as some runtimes pass it)", async () => {
    const holder = spawn("ip", ["netns", "exec", PODS[5]!, "sleep", "600"], { stdio: "ignore" });
    try {
      const path = `/proc/${holder.pid}/ns/net`;
      const target = sh("stat", ["-L", "-c", "%i", `/run/netns/${PODS[5]}`]).stdout.trim();
      // `ip netns exec` execs sleep in place: wait (bounded) until the process is inside the pod namespace.
      for (let i = 0; i < 5000 && sh("stat", ["-L", "-c", "%i", path]).stdout.trim() !== target; i++) await new Promise((r) => setImmediate(r));
      const procEnv = (command: string) => env(command, PODS[5]!, "ctr-proc", { CNI_NETNS: path });
      const add = await runPlugin(procEnv("ADD"), conf("1.1.0"), plugin);
      expect(add.code, add.stdout).toBe(0);
      expect((add.json?.interfaces as { sandbox?: string }[])[1]?.sandbox).toBe(path);
      expect(addressesOf(PODS[5]!, "eth0").length).toBe(2);
      const check = await runPlugin(procEnv("CHECK"), conf("1.1.0", { prevResult: add.json }), plugin);
      expect(check.code, check.stdout).toBe(0);
      expect((await runPlugin(procEnv("DEL"), conf("1.1.0"), plugin)).code).toBe(0);
      expect(linksOf(PODS[5]!)).toEqual(["lo"]);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("DEL succeeds for an unknown container and for a namespace that is already gone", async () => {
    expect((await runPlugin(env("DEL", PODS[4]!, "never-added"), conf("1.0.0"), plugin)).code).toBe(0);
    expect((await runPlugin(env("DEL", "fn-tc-p-gone", "never-added", { CNI_NETNS: "/run/netns/fn-tc-p-gone" }), conf("1.0.0"), plugin)).code).toBe(0);
    expect((await runPlugin(env("DEL", PODS[4]!, "no-netns", { CNI_NETNS: undefined }), conf("1.0.0"), plugin)).code).toBe(0);

    const gone = createNamespaces(["fn-tc-p-short"]);
    const add = await runPlugin(env("ADD", "fn-tc-p-short", "short-lived"), conf("1.0.0"), plugin);
    expect(add.code, add.stdout).toBe(0);
    gone(); // the pod's namespace vanishes before DEL (its veth goes with it)
    const del = await runPlugin(env("DEL", "fn-tc-p-short", "short-lived"), conf("1.0.0"), plugin);
    expect(del.code, del.stdout).toBe(0);
    expect(allocations().filter((a) => a.containerId === "short-lived")).toEqual([]);
  });

  it("GC (1.1.0) releases every allocation not in cni.dev/valid-attachments and removes its host veth", async () => {
    const ids = ["gc-keep", "gc-drop"];
    const results = await Promise.all(ids.map((id, i) => runPlugin(env("ADD", PODS[i]!, id), conf("1.1.0"), plugin)));
    for (const r of results) expect(r.code, r.stdout).toBe(0);
    const dropHost = (results[1]!.json as { interfaces: { name: string }[] }).interfaces[0]!.name;
    const gc = await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: "/usr/lib/cni" }, conf("1.1.0", { "cni.dev/valid-attachments": [{ containerID: "gc-keep", ifname: "eth0" }] }), plugin);
    expect(gc.code, gc.stdout).toBe(0);
    expect(allocations().map((a) => a.containerId)).toEqual(["gc-keep", "gc-keep"]);
    expect(linksOf(NODE, "fnv")).not.toContain(dropHost);
    expect((await runPlugin(env("DEL", PODS[0]!, "gc-keep"), conf("1.1.0"), plugin)).code).toBe(0);
  });

  it.each([["GC"], ["STATUS"]])("%s needs cniVersion 1.1.0 (error 1 for 1.0.0)", async (command) => {
    const run = await runPlugin({ CNI_COMMAND: command }, conf("1.0.0", { "cni.dev/valid-attachments": [] }), plugin);
    expect(run.code).toBe(1);
    expect(run.json).toMatchObject({ cniVersion: "1.0.0", code: 1 });
  });

  it("STATUS reports exhaustion (50) before the ADD that would fail, which then fails with 100", async () => {
    const small = (extra: Record<string, unknown> = {}) => conf("1.1.0", { name: "fn-tc-small", podCidrs: ["10.77.9.0/30"], ...extra });
    expect((await runPlugin({ CNI_COMMAND: "STATUS" }, small(), plugin)).code).toBe(0);
    const first = await runPlugin(env("ADD", PODS[5]!, "small-1"), small(), plugin);
    expect(first.code, first.stdout).toBe(0);
    const status = await runPlugin({ CNI_COMMAND: "STATUS" }, small(), plugin);
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ code: 50 });
    expect(String(status.json?.msg)).toContain('"10.77.9.0/30" is exhausted');
    const second = await runPlugin(env("ADD", PODS[4]!, "small-2"), small(), plugin);
    expect(second.json).toMatchObject({ code: 100 });
    expect(linksOf(PODS[4]!)).toEqual(["lo"]);
    expect((await runPlugin(env("DEL", PODS[5]!, "small-1"), small(), plugin)).code).toBe(0);
    expect((await runPlugin({ CNI_COMMAND: "STATUS" }, small(), plugin)).code).toBe(0);
  });

  it("STATUS reports a missing subnet file (agent not ready) as 50; ADD as 11 (try again later)", async () => {
    const noFile = conf("1.1.0", { podCidrs: undefined, subnetFile: join(data.path, "missing.json") });
    const status = await runPlugin({ CNI_COMMAND: "STATUS" }, noFile, plugin);
    expect(status.json).toMatchObject({ code: 50 });
    const add = await runPlugin(env("ADD", PODS[4]!, "early"), noFile, plugin);
    expect(add.json).toMatchObject({ code: 11 });
  });

  const bad: [string, Record<string, string | undefined>, string, number, string][] = [
    ["no CNI_COMMAND", { CNI_COMMAND: undefined }, conf("1.0.0"), 4, "CNI_COMMAND is not set"],
    ["unknown CNI_COMMAND", { CNI_COMMAND: "ATTACH" }, conf("1.0.0"), 4, '"ATTACH"'],
    ["no CNI_CONTAINERID", { CNI_CONTAINERID: undefined }, conf("1.0.0"), 4, "CNI_CONTAINERID is not set"],
    ["bad CNI_CONTAINERID", { CNI_CONTAINERID: "-x/y" }, conf("1.0.0"), 4, '"-x/y"'],
    ["no CNI_NETNS on ADD", { CNI_NETNS: undefined }, conf("1.0.0"), 4, "CNI_NETNS is not set"],
    ["CNI_NETNS gone", { CNI_NETNS: "/run/netns/fn-tc-p-nope" }, conf("1.0.0"), 4, '"/run/netns/fn-tc-p-nope" does not exist'],
    ["CNI_IFNAME too long", { CNI_IFNAME: "a-very-long-ifname" }, conf("1.0.0"), 4, '"a-very-long-ifname"'],
    ["malformed JSON", {}, '{"cniVersion": "1.0.0",', 6, "not JSON"],
    ["unknown cniVersion", {}, conf("0.3.1"), 1, '"0.3.1"'],
    ["wrong type", {}, conf("1.0.0", { type: "bridge" }), 7, '"bridge"'],
    ["bad pod CIDR", {}, conf("1.0.0", { podCidrs: ["10.0.0.0/33"] }), 7, '"10.0.0.0/33"'],
    ["two IPv4 pod CIDRs", {}, conf("1.0.0", { podCidrs: ["10.0.0.0/24", "10.0.1.0/24"] }), 7, "at most one per family"],
    ["MTU out of range", {}, conf("1.0.0", { mtu: 70000 }), 7, "mtu"],
    ["no nodeNetns", {}, conf("1.0.0", { nodeNetns: undefined }), 7, "nodeNetns"],
  ];
  it.each(bad)("ADD with %s fails with code %s and names the bad value", async (_name, overrides, stdin, code, text) => {
    const run = await runPlugin({ ...env("ADD", PODS[4]!, "bad-input"), ...overrides }, stdin, plugin);
    expect(run.code).toBe(1);
    expect(run.json).toMatchObject({ code });
    expect(String(run.json?.msg)).toContain(text);
    expect(run.stdout).not.toMatch(/\n\s+at /); // never a stack trace
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(linksOf(PODS[4]!)).toEqual(["lo"]);
  });
});
