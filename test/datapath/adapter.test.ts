import {
  type ClusterSnapshot,
  type KernelState,
  type NetworkOptions,
  computeNodeNetwork,
  diffNetwork,
  sortKernelState,
  vtepMacFor,
} from "@flatnet/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KernelCommandError, NFT_TABLE, applyKernelPlan, cleanupNode, ensureMasquerade, execInNetns, readKernelState } from "../../apps/agent/src/linux/index.ts";
import { createNode, deleteNetns, ipJson, sh, skipReason } from "./netns.ts";

const NS = "fn-ta-adapter";

/** Whether flatnet's nftables table exists in `netns`. */
const hasMasquerade = async (netns: string): Promise<boolean> => (await execInNetns({ name: netns }, "nft", ["list", "table", "inet", NFT_TABLE])).exitCode === 0;

const cluster = (backend: string, peers = 3): ClusterSnapshot => ({
  clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"],
  nodes: Array.from({ length: peers }, (_, i) => ({
    name: `node-${i + 1}`,
    underlayIps: [`172.31.0.${11 + i}`, `fd00::${11 + i}`],
    podCidrs: [`10.244.${i + 1}.0/24`, `fd00:10:244:${i + 1}::/64`],
    ...(backend === "" ? {} : {}),
  })),
});

const options = (backend: NetworkOptions["backend"]): NetworkOptions => ({
  backend,
  vni: 1,
  vxlanPort: 8472,
  underlayDevice: "eth0",
  underlayMtu: 1500,
  underlaySubnets: ["172.31.0.0/24", "fd00::/64"],
  vxlanDevice: "flatnet.1",
});

function desiredFor(snapshot: ClusterSnapshot, backend: NetworkOptions["backend"]): KernelState {
  const result = computeNodeNetwork(snapshot, "node-1", options(backend));
  if (!result.success) throw new Error(result.error.message);
  const { vxlan, routes, neighbours, fdb } = result.data;
  return vxlan === undefined ? { routes, neighbours, fdb } : { vxlan, routes, neighbours, fdb };
}

async function applyOnce(desired: KernelState): Promise<KernelState> {
  await applyKernelPlan(NS, diffNetwork(desired, await readKernelState(NS)));
  return readKernelState(NS);
}

// What the reconcile loop does after a device change: another pass, until nothing is left to do.
async function converge(desired: KernelState): Promise<KernelState> {
  let actual = await applyOnce(desired);
  for (let pass = 0; pass < 2 && diffNetwork(desired, actual).steps.length > 0; pass++) actual = await applyOnce(desired);
  return actual;
}

describe.skipIf(skipReason !== undefined)("linux adapter: read/apply round trip in a namespace", () => {
  beforeAll(() => {
    createNode(NS, ["172.31.0.11/24", "fd00::11/64"]);
    // Someone else's routes: no proto 77, so flatnet must neither read nor remove them.
    sh("ip", ["-n", NS, "route", "add", "192.168.50.0/24", "via", "172.31.0.1"]);
    sh("ip", ["-n", NS, "route", "add", "fd99::/64", "via", "fd00::1"]);
  });
  afterAll(() => deleteNetns(NS));

  it("starts empty: foreign routes are not flatnet's", async () => {
    expect(await readKernelState(NS)).toEqual({ routes: [], neighbours: [], fdb: [] });
  });

  it("host-gw: apply then read equals desired, and a second diff is empty", async () => {
    const desired = desiredFor(cluster("host-gw"), "host-gw");
    expect(desired.routes).toHaveLength(4);
    const actual = await converge(desired);
    expect(sortKernelState(actual)).toEqual(sortKernelState(desired));
    expect(diffNetwork(desired, actual).steps).toEqual([]);
  });

  it("vxlan: replaces host-gw routes, creates the device, neighbours and FDB entries", async () => {
    const desired = desiredFor(cluster("vxlan"), "vxlan");
    const actual = await converge(desired);
    expect(sortKernelState(actual)).toEqual(sortKernelState(desired));
    expect(actual.vxlan).toEqual({
      name: "flatnet.1",
      vni: 1,
      port: 8472,
      local: "172.31.0.11",
      underlayFamily: "IPv4",
      underlayDevice: "eth0",
      mac: vtepMacFor("node-1"),
      mtu: 1450,
      addresses: ["10.244.1.0/32", "fd00:10:244:1::/128"],
    });
    const link = ipJson<{ linkinfo: { info_data: { learning: boolean } } }[]>(NS, ["-d", "link", "show", "dev", "flatnet.1"]);
    expect(link[0]?.linkinfo.info_data.learning).toBe(false);
    expect(sh("ip", ["netns", "exec", NS, "cat", "/proc/sys/net/ipv6/conf/flatnet.1/accept_ra"]).trim()).toBe("0");
  });

  it("vxlan: a peer's new underlay IP replaces its FDB entry; a departed peer leaves nothing behind", async () => {
    const snapshot = cluster("vxlan");
    const moved = { ...snapshot, nodes: snapshot.nodes.filter((n) => n.name !== "node-3").map((n) => (n.name === "node-2" ? { ...n, underlayIps: ["172.31.0.42", "fd00::42"] } : n)) };
    const desired = desiredFor(moved, "vxlan");
    const actual = await converge(desired);
    expect(sortKernelState(actual)).toEqual(sortKernelState(desired));
    expect(actual.fdb).toEqual([{ mac: vtepMacFor("node-2"), dst: "172.31.0.42", dev: "flatnet.1" }]);
    expect(actual.routes.map((r) => r.dst).sort()).toEqual(["10.244.2.0/24", "fd00:10:244:2::/64"]);
  });

  it("vxlan: an MTU change updates the device in place", async () => {
    const desired = desiredFor(cluster("vxlan"), "vxlan");
    await converge(desired);
    const smaller = { ...desired, vxlan: { ...desired.vxlan!, mtu: 1400 } };
    const plan = diffNetwork(smaller, await readKernelState(NS));
    expect(plan.steps.map((s) => `${s.op} ${s.kind}`)).toEqual(["update vxlan-device"]);
    const actual = await converge(smaller);
    expect(actual.vxlan?.mtu).toBe(1400);
    expect(sortKernelState(actual)).toEqual(sortKernelState(smaller));
  });

  it("vxlan: a MAC change (the kernel flushes the device's neighbours) converges in one pass", async () => {
    const desired = desiredFor(cluster("vxlan"), "vxlan");
    await converge(desired);
    const renamed = { ...desired, vxlan: { ...desired.vxlan!, mac: "0e:aa:bb:cc:dd:ee" } };
    const plan = diffNetwork(renamed, await readKernelState(NS));
    expect(plan.steps.filter((s) => s.kind === "neighbour")).toHaveLength(4); // re-added after the flush
    expect(sortKernelState(await applyOnce(renamed))).toEqual(sortKernelState(renamed));
  });

  it("drift: a route deleted by hand is found missing and put back", async () => {
    const desired = desiredFor(cluster("vxlan"), "vxlan");
    await converge(desired);
    sh("ip", ["-n", NS, "route", "del", "10.244.3.0/24"]);
    const plan = diffNetwork(desired, await readKernelState(NS));
    expect(plan.steps).toEqual([{ op: "add", kind: "route", route: { family: "IPv4", dst: "10.244.3.0/24", via: "10.244.3.0", dev: "flatnet.1", onlink: true } }]);
    expect(sortKernelState(await converge(desired))).toEqual(sortKernelState(desired));
  });

  it("deleting objects that are already gone succeeds", async () => {
    const gone = { family: "IPv4" as const, dst: "10.250.0.0/24", via: "172.31.0.99", dev: "eth0", onlink: false };
    const result = await applyKernelPlan(NS, { steps: [{ op: "delete", kind: "route", route: gone }, { op: "delete", kind: "fdb", fdb: { mac: "0e:00:00:00:00:99", dst: "172.31.0.99", dev: "flatnet.1" } }] });
    expect(result).toEqual({ batches: 2, alreadyGone: 2 });
  });

  it("a refused line throws KernelCommandError naming it, after applying the rest", async () => {
    const bad = { family: "IPv4" as const, dst: "10.251.0.0/24", via: "192.0.2.1", dev: "eth0", onlink: false }; // gateway not on link
    const good = { family: "IPv4" as const, dst: "10.252.0.0/24", via: "172.31.0.12", dev: "eth0", onlink: false };
    const error = await applyKernelPlan(NS, { steps: [{ op: "add", kind: "route", route: bad }, { op: "add", kind: "route", route: good }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelCommandError);
    expect((error as KernelCommandError).failures).toEqual([
      { line: 1, command: "route replace 10.251.0.0/24 via 192.0.2.1 dev eth0 proto 77", message: expect.stringMatching(/Nexthop has invalid gateway|Network is unreachable/) },
    ]);
    expect((await readKernelState(NS)).routes).toContainEqual(good);
    await applyKernelPlan(NS, { steps: [{ op: "delete", kind: "route", route: good }] });
  });

  it("masquerade: one table of flatnet's own, replaced atomically, idempotent", async () => {
    await ensureMasquerade(NS, ["10.244.0.0/16", "fd00:10:244::/56"]);
    await ensureMasquerade(NS, ["10.244.0.0/16", "fd00:10:244::/56"]);
    expect(await hasMasquerade(NS)).toBe(true);
    const ruleset = sh("ip", ["netns", "exec", NS, "nft", "list", "table", "inet", "flatnet"]);
    expect(ruleset).toContain("ip saddr 10.244.0.0/16 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade fully-random");
    expect(ruleset).toContain("ip6 saddr fd00:10:244::/56 ip6 daddr != { fd00:10:244::/56, ff00::/8 } masquerade fully-random");
    expect(sh("ip", ["netns", "exec", NS, "nft", "list", "tables"]).trim().split("\n")).toEqual(["table inet flatnet"]);
  });

  it("cleanup removes flatnet's routes, device and table, leaves foreign routes, and is idempotent", async () => {
    await converge(desiredFor(cluster("vxlan"), "vxlan"));
    await cleanupNode(NS);
    await cleanupNode(NS);
    expect(await readKernelState(NS)).toEqual({ routes: [], neighbours: [], fdb: [] });
    expect(await hasMasquerade(NS)).toBe(false);
    const foreign = ipJson<{ dst: string }[]>(NS, ["route", "show", "192.168.50.0/24"]);
    expect(foreign.map((r) => r.dst)).toEqual(["192.168.50.0/24"]);
    expect(ipJson<{ dst: string }[]>(NS, ["-6", "route", "show", "fd99::/64"]).map((r) => r.dst)).toEqual(["fd99::/64"]);
  });
});

describe.skipIf(skipReason !== undefined)("linux adapter: VXLAN over an IPv6 underlay", () => {
  const V6 = "fn-ta-adapter6";
  beforeAll(() => createNode(V6, ["fd00::11/64"]));
  afterAll(() => deleteNetns(V6));

  it("creates the device on the IPv6 underlay (MTU - 70) and reads it back equal", async () => {
    const snapshot: ClusterSnapshot = {
      clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"],
      nodes: [1, 2].map((i) => ({ name: `node-${i}`, underlayIps: [`fd00::1${i}`], podCidrs: [`10.244.${i}.0/24`, `fd00:10:244:${i}::/64`] })),
    };
    const result = computeNodeNetwork(snapshot, "node-1", { ...options("vxlan"), underlaySubnets: ["fd00::/64"] });
    if (!result.success) throw new Error(result.error.message);
    const { vxlan, routes, neighbours, fdb } = result.data;
    const desired: KernelState = { vxlan: vxlan!, routes, neighbours, fdb };
    await applyKernelPlan(V6, diffNetwork(desired, await readKernelState(V6)));
    const actual = await readKernelState(V6);
    expect(sortKernelState(actual)).toEqual(sortKernelState(desired));
    expect(actual.vxlan).toMatchObject({ local: "fd00::11", underlayFamily: "IPv6", mtu: 1430 });
    expect(actual.fdb).toEqual([{ mac: vtepMacFor("node-2"), dst: "fd00::12", dev: "flatnet.1" }]);
  });
});
