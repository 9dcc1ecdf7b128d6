import { type ClusterSnapshot, computeNodeNetwork, type NetworkOptions, vtepMacFor } from "@flatnet/core";
import { afterEach, describe, expect, it } from "vitest";
import { waitUntil } from "../../test-support/wait-until.ts";
import { backoffDelay } from "./backoff.ts";
import { FakeKernel } from "../../test-support/fake-kernel.ts";
import { hostSetupFor } from "./host-setup.ts";
import { Reconciler, type ReconcilerOptions, type SyncOutcome } from "./loop.ts";

const OPTIONS: NetworkOptions = {
  backend: "vxlan",
  vni: 1,
  vxlanPort: 8472,
  underlayDevice: "eth0",
  underlayMtu: 1500,
  underlaySubnets: ["172.31.0.0/24"],
  vxlanDevice: "flatnet.1",
};

const node = (i: number, ip = `172.31.0.${10 + i}`) => ({ name: `node-${i}`, underlayIps: [ip], podCidrs: [`10.244.${i}.0/24`] });

class FakeSource {
  cluster: ClusterSnapshot = { clusterCidrs: ["10.244.0.0/16"], nodes: [node(1), node(2), node(3)] };
  failures: Error[] = [];
  calls = 0;
  async snapshot(): Promise<ClusterSnapshot> {
    this.calls++;
    const failure = this.failures.shift();
    if (failure) throw failure;
    return structuredClone(this.cluster);
  }
}

const until = (condition: () => boolean, what: string, limitMs = 10_000) => waitUntil(what, condition, { timeoutMs: limitMs, intervalMs: 2, maxIntervalMs: 2 });

describe("Reconciler against a fake kernel", () => {
  const loops: Reconciler[] = [];
  const make = (extra: Partial<ReconcilerOptions> = {}) => {
    const kernel = new FakeKernel();
    const source = new FakeSource();
    const outcomes: SyncOutcome[] = [];
    const loop = new Reconciler({
      node: "node-1", source, kernel, networkOptions: OPTIONS, resyncIntervalMs: 60_000,
      backoff: { initialMs: 1, maxMs: 8, jitter: 0 }, onSync: (o) => outcomes.push(o), ...extra,
    });
    loops.push(loop);
    return { kernel, source, loop, outcomes };
  };
  afterEach(async () => {
    for (const loop of loops.splice(0)) await loop.stop();
  });

  it("first sync programs the device, then every peer's neighbour, FDB entry and route", async () => {
    const { kernel, loop } = make();
    loop.start();
    await loop.whenSynced();
    await until(() => !loop["running"], "the loop to go idle");
    expect(kernel.state.vxlan?.name).toBe("flatnet.1");
    expect(kernel.state.routes.map((r) => r.dst).sort()).toEqual(["10.244.2.0/24", "10.244.3.0/24"]);
    expect([...kernel.state.fdb].sort((a, b) => a.dst.localeCompare(b.dst))).toEqual([
      { mac: vtepMacFor("node-2"), dst: "172.31.0.12", dev: "flatnet.1" },
      { mac: vtepMacFor("node-3"), dst: "172.31.0.13", dev: "flatnet.1" },
    ]);
    expect(kernel.hostSetups[0]).toEqual({
      clusterCidrs: ["10.244.0.0/16"],
      bridgeGateways: ["10.244.1.1/24"],
      podMtu: 1450,
      masquerade: true,
      nodeIps: ["172.31.0.11", "172.31.0.12", "172.31.0.13"],
    });
    const state = loop.snapshotState();
    expect(state.stats).toMatchObject({ successes: state.stats.syncs, consecutiveFailures: 0 });
    expect(state.skipped).toEqual([]);
    expect(Object.keys(state.stats.convergenceMs).sort()).toEqual(["node-2", "node-3"]);
    expect(loop.podMtu).toBe(1450);
  });

  it("has no pod MTU before the first compute", () => {
    expect(make().loop.podMtu).toBeUndefined();
  });

  it("a device step is followed at once by another sync (the kernel may have dropped objects)", async () => {
    const { loop, outcomes } = make();
    loop.start();
    await until(() => outcomes.length >= 2, "two syncs");
    expect(outcomes.map((o) => (o.ok ? o.steps : -1))).toEqual([7, 0]);
  });

  it("coalesces: any number of triggers during a sync cause exactly one more", async () => {
    const { kernel, loop, outcomes } = make();
    loop.start();
    await until(() => outcomes.length >= 2, "the initial syncs");
    let release!: () => void;
    kernel.hold = new Promise((r) => (release = r));
    kernel.state.routes = []; // drift, so the next sync has something to apply and waits on the hold
    loop.trigger("event");
    await until(() => kernel.reads === 3, "the held sync to read the kernel");
    for (let i = 0; i < 25; i++) loop.trigger(`event-${i}`);
    release();
    kernel.hold = undefined;
    await until(() => outcomes.length === 4 && !loop["running"], "the coalesced sync");
    expect(kernel.reads).toBe(4);
    expect(outcomes.length).toBe(4);
  });

  it("backs off exponentially on errors, counts them by kind, and recovers", async () => {
    const { kernel, source, loop, outcomes } = make();
    source.failures = [new Error("store busy")];
    kernel.failReads = [new Error("ip: cannot open netns"), new Error("ip: cannot open netns")];
    kernel.failApplies = [new Error("RTNETLINK answers: Invalid argument")];
    loop.start();
    await loop.whenSynced();
    const failures = outcomes.filter((o) => !o.ok);
    expect(failures.map((o) => (o.ok ? "" : `${o.kind} ${o.retryInMs}`))).toEqual(["datastore 1", "kernel-read 2", "kernel-read 4", "kernel-apply 8"]);
    const { stats } = loop.snapshotState();
    expect(stats.errors).toEqual({ datastore: 1, compute: 0, host: 0, "kernel-read": 2, "kernel-apply": 1 });
    expect(stats.lastError).toMatchObject({ kind: "kernel-apply", message: "RTNETLINK answers: Invalid argument" });
    expect(stats.consecutiveFailures).toBe(0);
    expect(kernel.state.routes).toHaveLength(2);
  });

  it("a node missing from the snapshot is a compute error and nothing is applied or removed", async () => {
    const { kernel, source, loop, outcomes } = make();
    loop.start();
    await loop.whenSynced();
    await until(() => outcomes.length >= 2, "initial syncs");
    const before = structuredClone(kernel.state);
    source.cluster.nodes = source.cluster.nodes.filter((n) => n.name !== "node-1");
    loop.trigger("event");
    await until(() => outcomes.some((o) => !o.ok), "a failed sync");
    expect(outcomes.find((o) => !o.ok)).toMatchObject({ kind: "compute" });
    expect(kernel.state).toEqual(before);
  });

  it("repairs drift on the periodic resync", async () => {
    const { kernel, loop, outcomes } = make({ resyncIntervalMs: 10 });
    loop.start();
    await until(() => outcomes.length >= 2, "initial syncs");
    const route = kernel.state.routes.find((r) => r.dst === "10.244.3.0/24")!;
    kernel.state.routes = kernel.state.routes.filter((r) => r !== route);
    kernel.state.fdb = [];
    await until(() => kernel.state.routes.some((r) => r.dst === "10.244.3.0/24") && kernel.state.fdb.length === 2, "the route and FDB entries to come back");
    expect(loop.snapshotState().stats.errors).toEqual({ datastore: 0, compute: 0, host: 0, "kernel-read": 0, "kernel-apply": 0 });
  });

  it("a node that leaves has its route, neighbour and FDB entry removed", async () => {
    const { kernel, source, loop, outcomes } = make();
    loop.start();
    await until(() => outcomes.length >= 2, "initial syncs");
    source.cluster.nodes = source.cluster.nodes.filter((n) => n.name !== "node-3");
    loop.trigger("event");
    await until(() => kernel.state.routes.length === 1, "node-3's route to go");
    expect(kernel.state.neighbours.map((n) => n.ip)).toEqual(["10.244.2.0"]);
    expect(kernel.state.fdb.map((f) => f.dst)).toEqual(["172.31.0.12"]);
    expect(loop.snapshotState().stats.convergenceMs).not.toHaveProperty("node-3");
  });

  it("a node whose underlay IP changes gets its FDB entry replaced, the old one gone", async () => {
    const { kernel, source, loop, outcomes } = make();
    loop.start();
    await until(() => outcomes.length >= 2, "initial syncs");
    source.cluster.nodes = source.cluster.nodes.map((n) => (n.name === "node-2" ? node(2, "172.31.0.99") : n));
    loop.trigger("event");
    await until(() => kernel.state.fdb.some((f) => f.dst === "172.31.0.99"), "the new FDB entry");
    expect(kernel.state.fdb.map((f) => f.dst).sort()).toEqual(["172.31.0.13", "172.31.0.99"]);
  });

  it("records convergence for a peer that joins later: from its first appearance to its routes applied", async () => {
    let clock = 0;
    const { kernel, source, loop, outcomes } = make({ now: () => clock });
    loop.start();
    await until(() => outcomes.length >= 2, "initial syncs");
    const apply = kernel.apply.bind(kernel);
    kernel.apply = async (plan) => {
      clock += 250; // the apply takes 250 ms on the fake clock
      return apply(plan);
    };
    source.cluster.nodes.push(node(4));
    clock = 1_000;
    loop.trigger("event");
    await until(() => "node-4" in loop.snapshotState().stats.convergenceMs, "node-4's convergence");
    expect(loop.snapshotState().stats.convergenceMs["node-4"]).toBe(250);
    expect(outcomes.at(-1)).toMatchObject({ ok: true, steps: 3, converged: [{ peer: "node-4", ms: 250 }] });
  });

  it("stop leaves the kernel programmed and later triggers do nothing", async () => {
    const { kernel, loop, outcomes } = make();
    loop.start();
    await until(() => outcomes.length >= 2, "initial syncs");
    const programmed = structuredClone(kernel.state);
    await loop.stop();
    loop.trigger("event");
    expect(kernel.state).toEqual(programmed);
    expect(outcomes).toHaveLength(2);
  });
});

describe("backoffDelay", () => {
  it.each([
    [1, 200], [2, 400], [3, 800], [8, 25_600], [9, 30_000], [100, 30_000],
  ])("failure %i -> %i ms (no jitter)", (failures, expected) => {
    expect(backoffDelay(failures, { jitter: 0 })).toBe(expected);
  });
  it.each([[0, 160], [1, 240]])("jitter 0.2 with random %d spreads to %i ms", (random, expected) => {
    expect(backoffDelay(1, { random: () => random })).toBe(expected);
  });
});


function setupOf(cluster: ClusterSnapshot) {
  const desired = computeNodeNetwork(cluster, "node-1", OPTIONS);
  if (!desired.success) throw new Error(desired.error.message);
  return { setup: hostSetupFor(cluster, desired.data, true), skipped: desired.data.skipped.map((s) => s.node) };
}

describe("hostSetupFor uses only the peers computeNodeNetwork accepted", () => {
  it.each([
    ["two IPv4 underlay IPs (issue 14.4)", ["8.8.8.8", "1.1.1.1"]],
    ["an underlay IP that is not an address", ["not-an-ip"]],
  ])("a peer skipped for %s adds nothing to the masquerade exemptions", (_, underlayIps) => {
    const { setup, skipped } = setupOf({ clusterCidrs: ["10.244.0.0/16"], nodes: [node(1), node(2), { ...node(3), underlayIps }] });
    expect(skipped).toEqual(["node-3"]);
    expect(setup.nodeIps).toEqual(["172.31.0.11", "172.31.0.12"]);
  });

  it("a duplicate node name counts once, as the first entry computeNodeNetwork used", () => {
    const { setup } = setupOf({ clusterCidrs: ["10.244.0.0/16"], nodes: [node(1), node(2), { ...node(2), underlayIps: ["1.1.1.1"] }] });
    expect(setup.nodeIps).toEqual(["172.31.0.11", "172.31.0.12"]);
  });

  it("every accepted peer and this node are exempt", () => {
    const { setup, skipped } = setupOf({ clusterCidrs: ["10.244.0.0/16"], nodes: [node(1), node(2), node(3)] });
    expect(skipped).toEqual([]);
    expect(setup).toEqual({
      clusterCidrs: ["10.244.0.0/16"],
      bridgeGateways: ["10.244.1.1/24"],
      podMtu: 1450,
      masquerade: true,
      nodeIps: ["172.31.0.11", "172.31.0.12", "172.31.0.13"],
    });
  });
});
