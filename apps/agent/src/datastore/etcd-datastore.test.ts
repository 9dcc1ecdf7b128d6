import { existsSync } from "node:fs";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdDatastore, type EtcdDatastoreOptions } from "./etcd-datastore.ts";
import { startEtcd, type RunningEtcd } from "../../test-support/start-etcd.ts";
import { waitUntil } from "../../test-support/wait-until.ts";

const haveEtcd = existsSync("/usr/bin/etcd");
if (!haveEtcd) console.warn("skipping etcd datastore tests: /usr/bin/etcd missing (apt-get install etcd-server)");

const v4 = { clusterCidrs: ["10.244.0.0/16"] };
const dual = { clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"] };
const reg = (name: string, ip = "172.31.0.10") => ({ name, underlayIps: [ip], vtepMac: "0e:00:00:00:00:01" });

describe.skipIf(!haveEtcd)("EtcdDatastore against a real etcd", { timeout: 30_000 }, () => {
  let etcd: RunningEtcd;
  let raw: Etcd3;
  const opened: EtcdDatastore[] = [];
  let prefixCounter = 0;
  const open = (overrides: Partial<EtcdDatastoreOptions> & { prefix: string }): EtcdDatastore => {
    const store = new EtcdDatastore({ endpoints: [etcd.endpoint], networkConfig: v4, ...overrides });
    opened.push(store);
    return store;
  };
  const freshPrefix = () => `/flatnet-test-${++prefixCounter}`;

  beforeAll(async () => {
    etcd = await startEtcd();
    raw = new Etcd3({ hosts: etcd.endpoint });
  }, 30_000);
  afterAll(async () => {
    for (const store of opened) await store.close();
    raw?.close();
    await etcd?.stop();
  });

  it("stores the network config once: the first creator wins, later ones read it", async () => {
    const prefix = freshPrefix();
    const first = await open({ prefix, networkConfig: dual }).config();
    const second = await open({ prefix, networkConfig: v4 }).config();
    expect(first).toEqual({ clusterCidrs: dual.clusterCidrs, backend: "vxlan", nodeMaskIPv4: 24, nodeMaskIPv6: 64, vni: 1, vxlanPort: 8472 });
    expect(second).toEqual(first);
  });

  it.each([
    ["missing", undefined, /holds no network config/],
    ["not JSON", "{oops", /value is not JSON/],
    ["bad key", JSON.stringify({ clusterCidrs: ["10.244.0.0/16"], vni: 0 }), /key "vni" = 0/],
  ])("fails with a message naming the problem when the stored config is %s", async (_label, stored, message) => {
    const prefix = freshPrefix();
    if (stored !== undefined) await raw.put(`${prefix}/config`).value(stored);
    await expect(open({ prefix, networkConfig: undefined }).config()).rejects.toThrow(message);
  });

  it("allocates distinct CIDRs and is idempotent by name, also from a restarted agent", async () => {
    const prefix = freshPrefix();
    const a = open({ prefix, networkConfig: dual });
    const n1 = await a.register(reg("n1", "172.31.0.11"));
    const n2 = await a.register(reg("n2", "172.31.0.12"));
    expect(n1.podCidrs).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
    expect(n2.podCidrs).toEqual(["10.244.1.0/24", "fd00:10:244:1::/64"]);
    const restarted = open({ prefix });
    const again = await restarted.register({ ...reg("n1", "172.31.0.99") });
    expect(again).toEqual({ name: "n1", underlayIps: ["172.31.0.99"], podCidrs: n1.podCidrs, vtepMac: "0e:00:00:00:00:01" });
    expect((await restarted.snapshot()).nodes.map((n) => [n.name, n.underlayIps[0], n.podCidrs[0]])).toEqual([
      ["n1", "172.31.0.99", "10.244.0.0/24"],
      ["n2", "172.31.0.12", "10.244.1.0/24"],
    ]);
  });

  it("never hands the same CIDR to two agents racing, each with its own etcd connection", async () => {
    const prefix = freshPrefix();
    const agents = Array.from({ length: 4 }, () => open({ prefix }));
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => agents[i % agents.length]!.register(reg(`race-${i}`, `172.31.1.${i + 1}`))),
    );
    const cidrs = results.map((r) => r.podCidrs[0]);
    expect(new Set(cidrs).size).toBe(16);
    expect((await agents[0]!.snapshot()).nodes).toHaveLength(16);
  });

  it("reports exhaustion naming the pool, and a removed node's CIDR becomes free again", async () => {
    const prefix = freshPrefix();
    const store = open({ prefix, networkConfig: { clusterCidrs: ["10.9.0.0/23"] } });
    await store.register(reg("x1"));
    const x2 = await store.register(reg("x2"));
    await expect(store.register(reg("x3"))).rejects.toMatchObject({
      code: "ERR_POOL_EXHAUSTED",
      message: expect.stringContaining("cluster CIDR 10.9.0.0/23 (2 of 2 /24 in use) is full"),
    });
    await store.remove("x2");
    expect((await store.register(reg("x3"))).podCidrs).toEqual(x2.podCidrs);
    expect((await store.snapshot()).nodes.map((n) => n.name)).toEqual(["x1", "x3"]);
  });

  it("drops a node that stops heartbeating from the snapshot but keeps its CIDR reserved", async () => {
    const prefix = freshPrefix();
    const dying = open({ prefix, nodeTtlSeconds: 2 });
    const survivor = open({ prefix });
    const before = await dying.register(reg("dies"));
    await survivor.register(reg("lives"));
    await waitUntil("the silent node to leave the snapshot", async () =>
      (await survivor.snapshot()).nodes.every((n) => n.name !== "dies"),
    );
    expect((await survivor.snapshot()).nodes.map((n) => n.name)).toEqual(["lives"]);
    // It comes back: same CIDR (reservation lease still alive).
    expect((await open({ prefix }).register(reg("dies"))).podCidrs).toEqual(before.podCidrs);
  });

  it("heartbeat reports ERR_NOT_FOUND when the lease is gone; registering again keeps the CIDR", async () => {
    const prefix = freshPrefix();
    const store = open({ prefix });
    const before = await store.register(reg("hb"));
    const lease = (await raw.get(`${prefix}/alive/hb`).exec()).kvs[0]!.lease;
    await raw.leaseClient.leaseRevoke({ ID: lease });
    expect((await store.snapshot()).nodes).toEqual([]);
    await expect(store.heartbeat("hb")).rejects.toMatchObject({ code: "ERR_NOT_FOUND", message: expect.stringContaining("lease expired") });
    expect(await store.register(reg("hb"))).toEqual(before);
    await store.heartbeat("hb");
    expect((await store.snapshot()).nodes).toEqual([before]);
    await expect(store.heartbeat("never-registered")).rejects.toMatchObject({ code: "ERR_NOT_FOUND" });
  });

  it("heartbeat reports ERR_NOT_FOUND when only the reservation lease is gone, and renews a live pair", async () => {
    const prefix = freshPrefix();
    const store = open({ prefix });
    await store.register(reg("res"));
    await store.heartbeat("res");
    const reservation = (await raw.get(`${prefix}/nodes/res`).exec()).kvs[0]!.lease;
    await raw.leaseClient.leaseRevoke({ ID: reservation });
    await expect(store.heartbeat("res")).rejects.toMatchObject({ code: "ERR_NOT_FOUND", message: expect.stringContaining("lease expired") });
    await expect(store.heartbeat("res")).rejects.toMatchObject({ code: "ERR_NOT_FOUND", message: expect.stringContaining("was not registered") });
  });

  it("signals watchers on changes by other agents, and stops after unsubscribe", async () => {
    const prefix = freshPrefix();
    const watching = open({ prefix });
    const writer = open({ prefix });
    await watching.config();
    let signals = 0;
    const stop = watching.watch(() => signals++);
    await waitUntil("the watch to be established", async () => {
      await writer.register(reg(`w-${signals}`));
      return signals > 0;
    });
    const seen = signals;
    await writer.remove("w-0");
    await waitUntil("a signal for the removal", () => signals > seen);
    stop();
  });

  it("resumes after compaction: a watch from a compacted revision restarts from now and keeps signalling", async () => {
    const prefix = freshPrefix();
    const restarts: string[] = [];
    const store = open({ prefix, onWatchRestart: (reason) => restarts.push(reason) });
    const writer = open({ prefix });
    await writer.register(reg("c1"));
    const old = (await raw.get(`${prefix}/config`).exec()).header.revision;
    await writer.register(reg("c2"));
    const now = (await raw.get(`${prefix}/config`).exec()).header.revision;
    await raw.kv.compact({ revision: now, physical: true });
    let signals = 0;
    (store as unknown as { listeners: Set<() => void> }).listeners.add(() => signals++);
    store.startWatch(old);
    await waitUntil("the compaction restart", () => restarts.length > 0);
    expect(restarts[0]).toMatch(/canceled by etcd/);
    const afterRestart = signals;
    expect(afterRestart).toBeGreaterThan(0);
    await waitUntil("signals after the restart", async () => {
      await writer.register(reg(`c-after-${signals}`));
      return signals > afterRestart;
    });
  });

  it("survives an etcd restart: the same client reads, writes and watches again", async () => {
    const prefix = freshPrefix();
    const store = open({ prefix, requestTimeoutMs: 2000 });
    const n = await store.register(reg("r1"));
    let signals = 0;
    store.watch(() => signals++);
    await etcd.restart();
    const snapshot = await waitUntil("the store to answer after the restart", async () => (await store.snapshot()).nodes);
    expect(snapshot).toEqual([n]);
    const seen = signals;
    await waitUntil("a watch signal after the restart", async () => {
      await open({ prefix }).register(reg(`r-${signals}`));
      return signals > seen;
    });
  });
});
