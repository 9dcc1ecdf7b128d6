import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitUntil } from "../../test-support/wait-until.ts";
import { DatastoreError } from "./datastore.ts";
import { EmbeddedDatastore, type EmbeddedDatastoreOptions } from "./embedded.ts";
import { createDatastore } from "./factory.ts";

const CONFIG = { clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], backend: "vxlan" as const };
const reg = (name: string, ip = "172.31.0.11") => ({ name, underlayIps: [ip], vtepMac: "0e:00:00:00:00:01" });
const tsx = fileURLToPath(new URL("../../../../node_modules/.bin/tsx", import.meta.url));
const agentDir = fileURLToPath(new URL("../../", import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../../test-support/fixtures/${name}`, import.meta.url));

const until = (condition: () => boolean, what: string, limitMs = 10_000) => waitUntil(what, condition, { timeoutMs: limitMs, intervalMs: 5, maxIntervalMs: 5 });

describe("embedded datastore", () => {
  let dir: string;
  let path: string;
  const open: EmbeddedDatastore[] = [];
  const openStore = (options: Partial<EmbeddedDatastoreOptions> = {}) => {
    const store = new EmbeddedDatastore({ path, networkConfig: CONFIG, ...options });
    open.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fn-ta-store-"));
    path = join(dir, "flatnet.db");
  });
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores the network config once: the creator's wins, later openers read it", async () => {
    openStore();
    const second = openStore({ networkConfig: { clusterCidrs: ["10.99.0.0/16"] } });
    expect(await second.config()).toEqual({ clusterCidrs: CONFIG.clusterCidrs, backend: "vxlan", nodeMaskIPv4: 24, nodeMaskIPv6: 64, vni: 1, vxlanPort: 8472 });
  });

  it("fails clearly when nobody stored a config", async () => {
    const store = new EmbeddedDatastore({ path });
    open.push(store);
    await expect(store.config()).rejects.toMatchObject({ code: "ERR_STORE_CONFIG", message: expect.stringContaining("has no network config") });
  });

  it.each([
    [{ clusterCidrs: [] }, /clusterCidrs/],
    [{ clusterCidrs: ["10.0.0.0/8"], vni: 0 }, /vni/],
  ])("refuses a bad network config %j, naming the key", (networkConfig, message) => {
    expect(() => new EmbeddedDatastore({ path, networkConfig })).toThrow(message);
  });

  it("allocates one pod CIDR per family; re-registration keeps it and updates the underlay", async () => {
    const store = openStore();
    const a = await store.register(reg("node-a"));
    const b = await store.register(reg("node-b"));
    expect(a.podCidrs).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
    expect(b.podCidrs).toEqual(["10.244.1.0/24", "fd00:10:244:1::/64"]);
    const again = await store.register(reg("node-a", "172.31.0.99"));
    expect(again).toEqual({ name: "node-a", underlayIps: ["172.31.0.99"], podCidrs: a.podCidrs, vtepMac: "0e:00:00:00:00:01" });
    expect((await store.snapshot()).nodes.map((n) => [n.name, n.underlayIps[0]])).toEqual([["node-a", "172.31.0.99"], ["node-b", "172.31.0.11"]]);
  });

  it("records the published underlay MTU (updated on re-registration) and the first registration time (kept)", async () => {
    let clock = 1_000_000;
    const store = openStore({ now: () => clock });
    const row = () => {
      const db = new DatabaseSync(path);
      try {
        return db.prepare("SELECT underlay_mtu, registered_at FROM nodes WHERE name = 'node-a'").get();
      } finally {
        db.close();
      }
    };
    await store.register({ ...reg("node-a"), underlayMtu: 1500 });
    expect(row()).toEqual({ underlay_mtu: 1500, registered_at: 1_000_000 });
    clock += 5_000;
    await store.register({ ...reg("node-a"), underlayMtu: 1450 });
    expect(row()).toEqual({ underlay_mtu: 1450, registered_at: 1_000_000 });
    await store.register(reg("node-a"));
    expect(row()).toEqual({ underlay_mtu: null, registered_at: 1_000_000 });
  });

  it("a row the config cannot hold as a whole still blocks the CIDRs of it that fit", async () => {
    const store = openStore();
    await store.register(reg("node-a"));
    // A row written by hand or under an older config: its IPv6 CIDR lies outside the cluster CIDRs.
    const db = new DatabaseSync(path);
    db.prepare("INSERT INTO nodes (name, underlay_ips, vtep_mac, underlay_mtu, pod_cidrs, lease_expires, registered_at) VALUES (?, ?, ?, NULL, ?, ?, 0)")
      .run("odd", JSON.stringify(["172.31.0.12"]), "0e:00:00:00:00:02", JSON.stringify(["10.244.1.0/24", "fd99::/64"]), Date.now() + 60_000);
    db.close();
    expect((await store.register(reg("node-b"))).podCidrs).toEqual(["10.244.2.0/24", "fd00:10:244:1::/64"]);
  });

  it("reports an exhausted pool with its code", async () => {
    const store = openStore({ networkConfig: { clusterCidrs: ["10.0.0.0/23"] } });
    await store.register(reg("n1"));
    await store.register(reg("n2"));
    await expect(store.register(reg("n3"))).rejects.toMatchObject({ code: "ERR_POOL_EXHAUSTED" });
  });

  it("several processes registering at once get distinct CIDRs", async () => {
    openStore(); // creates the store and its config
    const tsx = fileURLToPath(new URL("../../../../node_modules/.bin/tsx", import.meta.url));
    const worker = fileURLToPath(new URL("../../test-support/fixtures/register-many.ts", import.meta.url));
    const cwd = fileURLToPath(new URL("../../", import.meta.url));
    const run = (prefix: string) =>
      new Promise<{ name: string; podCidrs: string[] }[]>((resolve, reject) => {
        const child = spawn(tsx, [worker, path, prefix, "5"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker ${prefix} exited ${code}: ${err}`))));
      });
    const results = (await Promise.all(["p", "q", "r", "s"].map(run))).flat();
    expect(results).toHaveLength(20);
    const cidrs = results.flatMap((r) => r.podCidrs);
    expect(new Set(cidrs).size).toBe(40);
    const snapshot = await openStore().snapshot();
    expect(snapshot.nodes).toHaveLength(20);
  }, 60_000);

  it("a lease that runs out removes the node from the snapshot; a heartbeat brings it back with its CIDR", async () => {
    let now = 1_000_000;
    const store = openStore({ leaseTtlMs: 30_000, now: () => now });
    const a = await store.register(reg("node-a"));
    await store.register(reg("node-b"));
    now += 20_000;
    await store.heartbeat("node-b");
    now += 15_000; // node-a: 35 s without a heartbeat
    expect((await store.snapshot()).nodes.map((n) => n.name)).toEqual(["node-b"]);
    await store.heartbeat("node-a");
    expect((await store.snapshot()).nodes.find((n) => n.name === "node-a")?.podCidrs).toEqual(a.podCidrs);
  });

  it("releases an expired node's CIDR only after the grace period", async () => {
    let now = 1_000_000;
    const store = openStore({ networkConfig: { clusterCidrs: ["10.0.0.0/23"] }, leaseTtlMs: 1_000, releaseGraceMs: 10_000, now: () => now });
    const a = await store.register(reg("n1"));
    await store.register(reg("n2"));
    now += 5_000; // both expired, still within grace
    await expect(store.register(reg("n3"))).rejects.toMatchObject({ code: "ERR_POOL_EXHAUSTED" });
    now += 10_000;
    expect((await store.register(reg("n3"))).podCidrs).toEqual(a.podCidrs);
    await expect(store.heartbeat("n1")).rejects.toMatchObject({ code: "ERR_NOT_FOUND" });
  });

  it("heartbeat of an unknown node fails with ERR_NOT_FOUND; remove is idempotent", async () => {
    const store = openStore();
    await expect(store.heartbeat("ghost")).rejects.toBeInstanceOf(DatastoreError);
    await store.register(reg("node-a"));
    await store.remove("node-a");
    await store.remove("node-a");
    expect((await store.snapshot()).nodes).toEqual([]);
  });

  it("watch fires when another opener changes the store, not on a routine heartbeat, and stops on unsubscribe", async () => {
    const watcher = openStore({ pollIntervalMs: 50 });
    const writer = openStore();
    let calls = 0;
    const stop = watcher.watch(() => calls++);
    await writer.register(reg("node-a"));
    await until(() => calls === 1, "the watch to fire after a registration");
    await writer.heartbeat("node-a");
    await writer.register(reg("node-b"));
    await until(() => calls === 2, "the watch to fire after the second registration");
    await writer.remove("node-a");
    await until(() => calls === 3, "the watch to fire after a removal");
    stop();
    await writer.register(reg("node-c"));
    expect(calls).toBe(3);
  });

  // A writer in another process: inotify sees its WAL write before its commit is visible to readers, so a watcher
  // that only reacted to that could read the old counter and sleep until the poll. The poll is an hour here: every
  // registration must reach the watcher through file events alone.
  it("every registration by another process wakes a watcher through file events alone (poll disabled)", async () => {
    const ROUNDS = 150;
    const watcher = openStore({ pollIntervalMs: 3_600_000 });
    const names: string[] = [];
    let calls = 0;
    watcher.watch(() => {
      calls++;
      // Level-triggered: what the listener can read right now must already hold the change that woke it.
      void watcher.snapshot().then((s) => names.splice(0, names.length, ...s.nodes.map((n) => n.name)));
    });
    const child = spawn(tsx, [fixture("register-on-command.ts"), path], { cwd: agentDir, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise((resolve) => child.once("close", resolve));
    try {
      const missed: string[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const name = `w-${i}`;
        const before = calls;
        child.stdin.write(`${name}\n`);
        await until(() => out.includes(`ok ${name}\n`) || out.includes("error ") || child.exitCode !== null, `the writer to register ${name} (${err})`);
        expect(out).not.toContain("error ");
        try {
          await until(() => calls > before && names.includes(name), `the watcher to see ${name}`, 5_000);
        } catch {
          missed.push(name);
          break; // with the poll disabled a missed change is never seen: no need to wait out the rest
        }
      }
      expect(missed, "registrations the watcher never saw through file events").toEqual([]);
      expect(names).toHaveLength(ROUNDS);
    } finally {
      child.stdin.end();
      child.kill("SIGTERM");
      await exited;
    }
  }, 120_000);

  it("several processes writing at once: the watcher converges on the final state through file events alone", async () => {
    const watcher = openStore({ pollIntervalMs: 3_600_000 });
    let count = 0;
    watcher.watch(() => void watcher.snapshot().then((s) => (count = s.nodes.length)));
    const runs = ["p", "q", "r", "s"].map(
      (prefix) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(tsx, [fixture("register-many.ts"), path, prefix, "10"], { cwd: agentDir, stdio: ["ignore", "ignore", "pipe"] });
          let err = "";
          child.stderr.on("data", (d: Buffer) => (err += d.toString()));
          child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`writer ${prefix} exited ${code}: ${err}`))));
        }),
    );
    await Promise.all(runs);
    await until(() => count === 40, "the watcher to see all 40 registrations", 5_000);
  }, 60_000);

  it("a watcher whose read fails (store busy) retries by itself instead of waiting for the poll", async () => {
    const watcher = openStore({ pollIntervalMs: 3_600_000 });
    const writer = openStore();
    // Stand-in for SQLITE_BUSY: the watcher's reads fail until `busy` is cleared.
    const internals = watcher as unknown as { observe: () => string; watcher?: { close(): void } };
    const observe = internals.observe.bind(watcher);
    let busy = false;
    let failures = 0;
    internals.observe = () => {
      if (busy) {
        failures++;
        throw new Error("database is locked");
      }
      return observe();
    };
    let calls = 0;
    watcher.watch(() => calls++);
    busy = true;
    await writer.register(reg("node-a"));
    await until(() => failures > 0, "the watcher's read to fail");
    internals.watcher?.close(); // no more file events: only the retry can deliver the change now
    busy = false;
    await until(() => calls === 1, "the watcher to retry and see node-a", 4_000);
  });

  it("watch fires when a lease runs out, without any write", async () => {
    let now = 1_000_000;
    const store = openStore({ leaseTtlMs: 30_000, pollIntervalMs: 20, now: () => now });
    await store.register(reg("node-a"));
    let calls = 0;
    store.watch(() => calls++);
    now += 31_000;
    await until(() => calls === 1, "the watch to fire on lease expiry");
    expect((await store.snapshot()).nodes).toEqual([]);
  });

  it("opens while another connection holds a write transaction on the fresh file (SQLite answers busy without waiting)", async () => {
    // The other connection (a second agent creating the same store) takes RESERVED before this one switches to WAL;
    // SQLite answers that switch "database is locked" at once, without its busy handler: the open must retry it.
    const creator = new DatabaseSync(path);
    creator.exec("CREATE TABLE other (x)");
    creator.close();
    const lock = new Int32Array(new SharedArrayBuffer(4));
    const holder = new Worker(
      `const { DatabaseSync } = require("node:sqlite");
       const { workerData: { path, lock } } = require("node:worker_threads");
       const db = new DatabaseSync(path);
       db.exec("BEGIN IMMEDIATE");
       Atomics.store(lock, 0, 1);
       Atomics.notify(lock, 0);
       Atomics.wait(lock, 0, 1, 200); // holds the write lock while the store opens, then lets go
       db.exec("COMMIT");
       db.close();`,
      { eval: true, workerData: { path, lock } },
    );
    try {
      Atomics.wait(lock, 0, 0, 10_000);
      expect(Atomics.load(lock, 0)).toBe(1);
      const store = openStore();
      expect((await store.register(reg("node-a"))).podCidrs).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
    } finally {
      await holder.terminate();
    }
  });

  it("createDatastore opens the embedded store", async () => {
    const store = await createDatastore({ kind: "embedded", path, networkConfig: CONFIG });
    expect(store.kind).toBe("embedded");
    expect((await store.register(reg("x"))).podCidrs).toHaveLength(2);
    await store.close();
  });
});
