// Durable node IPAM under fire: 200 concurrent ADDs, and SIGKILL injected at every step of ADD, DEL and GC.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IpamStore } from "../../apps/agent/src/ipam-store/store.ts";
import { addressesOf, createNamespaces, installPlugin, isRoot, linksOf, runPlugin, tempDir } from "./helpers.ts";

const NODE = "fn-tc-k-node";
const CONCURRENT = 200;

if (!isRoot) console.log("skipping CNI crash/concurrency tests: they need root (network namespaces)");

describe.skipIf(!isRoot)("flatnet CNI: concurrency and crash safety", { timeout: 120_000 }, () => {
  const data = tempDir("fn-tc-crash-");
  const conf = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ cniVersion: "1.1.0", name: "fn-tc-crash", type: "flatnet", podCidrs: ["10.78.0.0/24", "fd00:78::/64"], mtu: 1450, nodeNetns: NODE, dataDir: data.path, ...extra });
  const env = (command: string, pod: string, containerId: string, extra: Record<string, string> = {}) => ({
    CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: `/run/netns/${pod}`, CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni", ...extra,
  });
  const allocations = () => {
    const store = IpamStore.open(join(data.path, "fn-tc-crash", "ipam.db"));
    try {
      return store.list();
    } finally {
      store.close();
    }
  };
  const gc = (valid: string[]) =>
    runPlugin({ CNI_COMMAND: "GC", CNI_PATH: "/usr/lib/cni" }, conf({ "cni.dev/valid-attachments": valid.map((id) => ({ containerID: id, ifname: "eth0" })) }), plugin);
  let cleanup = () => {};
  let plugin = "";

  beforeAll(() => {
    plugin = installPlugin(data.path);
    cleanup = createNamespaces([NODE, "fn-tc-k-a", "fn-tc-k-b", "fn-tc-k-c"]);
  }, 300_000);
  afterAll(() => {
    cleanup();
    data.remove();
  });

  it(`${CONCURRENT} concurrent ADDs on one node yield ${CONCURRENT} distinct IPs, each on its pod; concurrent DELs release all`, async () => {
    const pods = Array.from({ length: CONCURRENT }, (_, i) => `fn-tc-k-c${i}`);
    const batch = spawnSync("ip", ["-batch", "-"], { input: pods.map((p) => `netns add ${p}`).join("\n") + "\n" });
    expect(batch.status).toBe(0);
    try {
      const adds = await Promise.all(pods.map((pod, i) => runPlugin(env("ADD", pod, `conc-${i}`), conf(), plugin)));
      const failed = adds.filter((r) => r.code !== 0);
      expect(failed.map((r) => r.stdout)).toEqual([]);
      const v4 = adds.map((r) => String((r.json?.ips as { address: string }[])[0]?.address));
      const v6 = adds.map((r) => String((r.json?.ips as { address: string }[])[1]?.address));
      expect(new Set(v4).size).toBe(CONCURRENT);
      expect(new Set(v6).size).toBe(CONCURRENT);
      expect(allocations().length).toBe(2 * CONCURRENT);
      for (const i of [0, 57, 199]) expect(addressesOf(pods[i]!, "eth0")).toEqual([v4[i], v6[i]]);
      expect(linksOf(NODE, "fnv").length).toBe(CONCURRENT);

      const dels = await Promise.all(pods.map((pod, i) => runPlugin(env("DEL", pod, `conc-${i}`), conf(), plugin)));
      expect(dels.filter((r) => r.code !== 0).map((r) => r.stdout)).toEqual([]);
      expect(allocations()).toEqual([]);
      expect(linksOf(NODE, "fnv")).toEqual([]);
    } finally {
      spawnSync("ip", ["-batch", "-"], { input: pods.map((p) => `netns del ${p}`).join("\n") + "\n" });
    }
  }, 180_000);

  // After each crash: the state is consistent (no address on two pods), and the runtime's recovery converges to clean.
  const points = ["after-alloc", "after-attach", "after-commit"] as const;
  it.each(points)("SIGKILL at ADD %s: no duplicate meanwhile, and DEL (what a runtime does after a failed ADD) cleans up", async (point) => {
    const crashed = await runPlugin(env("ADD", "fn-tc-k-a", `crash-${point}`, { FLATNET_CNI_CRASH_AT: point }), conf(), plugin);
    expect(crashed.signal).toBe("SIGKILL");
    expect(crashed.stdout).toBe("");
    const held = allocations().filter((a) => a.containerId === `crash-${point}`).map((a) => a.ip);
    expect(held.length).toBe(2); // committed before the kill: the address stays reserved, never handed out twice

    const other = await runPlugin(env("ADD", "fn-tc-k-b", `bystander-${point}`), conf(), plugin);
    expect(other.code, other.stdout).toBe(0);
    const otherIps = (other.json?.ips as { address: string }[]).map((ip) => ip.address.split("/")[0]);
    expect(otherIps.filter((ip) => held.includes(String(ip)))).toEqual([]);

    const del = await runPlugin(env("DEL", "fn-tc-k-a", `crash-${point}`), conf(), plugin);
    expect(del.code, del.stdout).toBe(0);
    expect(allocations().filter((a) => a.containerId === `crash-${point}`)).toEqual([]);
    expect(linksOf("fn-tc-k-a")).toEqual(["lo"]);
    expect((await runPlugin(env("DEL", "fn-tc-k-b", `bystander-${point}`), conf(), plugin)).code).toBe(0);
    expect(linksOf(NODE, "fnv")).toEqual([]);
  });

  it.each(points)("SIGKILL at ADD %s, then a retried ADD: same addresses, one interface, attached", async (point) => {
    const id = `retry-${point}`;
    const crashed = await runPlugin(env("ADD", "fn-tc-k-a", id, { FLATNET_CNI_CRASH_AT: point }), conf(), plugin);
    expect(crashed.signal).toBe("SIGKILL");
    const held = allocations().filter((a) => a.containerId === id).map((a) => a.ip);
    const retry = await runPlugin(env("ADD", "fn-tc-k-a", id), conf(), plugin);
    expect(retry.code, retry.stdout).toBe(0);
    expect((retry.json?.ips as { address: string }[]).map((ip) => ip.address.split("/")[0])).toEqual(held);
    expect(allocations().filter((a) => a.containerId === id).map((a) => a.state)).toEqual(["attached", "attached"]);
    expect(linksOf(NODE, "fnv").length).toBe(1);
    expect((await runPlugin(env("DEL", "fn-tc-k-a", id), conf(), plugin)).code).toBe(0);
  });

  it.each(points)("SIGKILL at ADD %s and the runtime never calls DEL: GC with the valid list releases it and its veth", async (point) => {
    const keep = await runPlugin(env("ADD", "fn-tc-k-c", "gc-keeper"), conf(), plugin);
    expect(keep.code, keep.stdout).toBe(0);
    const crashed = await runPlugin(env("ADD", "fn-tc-k-a", `orphan-${point}`, { FLATNET_CNI_CRASH_AT: point }), conf(), plugin);
    expect(crashed.signal).toBe("SIGKILL");
    const result = await gc(["gc-keeper"]);
    expect(result.code, result.stdout).toBe(0);
    expect(allocations().map((a) => a.containerId)).toEqual(["gc-keeper", "gc-keeper"]);
    expect(linksOf("fn-tc-k-a")).toEqual(["lo"]);
    expect(linksOf(NODE, "fnv").length).toBe(1);
    expect((await runPlugin(env("DEL", "fn-tc-k-c", "gc-keeper"), conf(), plugin)).code).toBe(0);
  });

  it.each(["del-after-detach", "del-after-release"] as const)("SIGKILL at %s: a repeated DEL (the runtime retries) finishes the job", async (point) => {
    const id = `del-${point}`;
    expect((await runPlugin(env("ADD", "fn-tc-k-a", id), conf(), plugin)).code).toBe(0);
    const crashed = await runPlugin(env("DEL", "fn-tc-k-a", id, { FLATNET_CNI_CRASH_AT: point }), conf(), plugin);
    expect(crashed.signal).toBe("SIGKILL");
    expect(linksOf("fn-tc-k-a")).toEqual(["lo"]); // the interface went first: an address is never freed while in use
    const again = await runPlugin(env("DEL", "fn-tc-k-a", id), conf(), plugin);
    expect(again.code, again.stdout).toBe(0);
    expect(allocations().filter((a) => a.containerId === id)).toEqual([]);
  });

  it("SIGKILL during GC after the release: the next GC sweeps the veth left behind", async () => {
    expect((await runPlugin(env("ADD", "fn-tc-k-a", "gc-crash"), conf(), plugin)).code).toBe(0);
    const crashed = await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: "/usr/lib/cni", FLATNET_CNI_CRASH_AT: "gc-after-release" }, conf({ "cni.dev/valid-attachments": [] }), plugin);
    expect(crashed.signal).toBe("SIGKILL");
    expect(allocations()).toEqual([]);
    expect(linksOf(NODE, "fnv").length).toBe(1); // released, but its veth is still there
    expect((await gc([])).code).toBe(0);
    expect(linksOf(NODE, "fnv")).toEqual([]);
    expect(linksOf("fn-tc-k-a")).toEqual(["lo"]);
  });

  it("the IPAM survives the node's restart of everything: a new plugin process sees every live pod's address", async () => {
    const add = await runPlugin(env("ADD", "fn-tc-k-b", "survivor"), conf(), plugin);
    expect(add.code, add.stdout).toBe(0);
    const before = allocations().filter((a) => a.containerId === "survivor");
    const status = await runPlugin({ CNI_COMMAND: "STATUS" }, conf(), plugin);
    expect(status.code).toBe(0);
    const check = await runPlugin(env("CHECK", "fn-tc-k-b", "survivor"), conf({ prevResult: add.json }), plugin);
    expect(check.code, check.stdout).toBe(0);
    expect(allocations().filter((a) => a.containerId === "survivor")).toEqual(before);
    expect((await runPlugin(env("DEL", "fn-tc-k-b", "survivor"), conf(), plugin)).code).toBe(0);
  });
});
