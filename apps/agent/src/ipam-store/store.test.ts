import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NodeIpam, parseCidr } from "@flatnet/core";
import { IpamDamagedError, IpamStore } from "./store.ts";

let dir: string;
let clock: number;
const open = () => IpamStore.open(join(dir, "ipam.db"), { now: () => clock });
const v4 = parseCidr("10.244.1.0/24");
const v6 = parseCidr("fd00:10:244:1::/64");
const key = (containerId: string, ifName = "eth0") => ({ containerId, ifName });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fn-ipam-"));
  clock = 1_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("IpamStore.usage", () => {
  it.each([
    ["10.244.1.0/24", 253],
    ["10.0.0.0/30", 1],
    ["fd00::/126", 2],
    ["fd00::/64", Number.MAX_SAFE_INTEGER - 2],
  ])("%s holds %i pod addresses (network/VTEP, gateway and IPv4 broadcast reserved)", (pool, capacity) => {
    const store = open();
    expect(store.usage([parseCidr(pool)])).toEqual([{ pool, family: pool.includes(":") ? "IPv6" : "IPv4", used: 0, capacity, free: capacity }]);
    store.close();
  });
});

describe("IpamStore", () => {
  it("allocates one address per pool, skipping the VTEP (.0) and gateway (.1) addresses", () => {
    const store = open();
    const got = store.allocate(key("a"), [v4, v6]);
    expect(got).toEqual({
      success: true,
      data: [
        { containerId: "a", ifName: "eth0", pool: "10.244.1.0/24", family: "IPv4", ip: "10.244.1.2", prefix: 24, gateway: "10.244.1.1", seq: 1, state: "pending", createdMs: 1000 },
        { containerId: "a", ifName: "eth0", pool: "fd00:10:244:1::/64", family: "IPv6", ip: "fd00:10:244:1::2", prefix: 64, gateway: "fd00:10:244:1::1", seq: 1, state: "pending", createdMs: 1000 },
      ],
    });
    store.close();
  });

  it("is idempotent per attachment: a retried ADD gets the same address back", () => {
    const store = open();
    const first = store.allocate(key("a"), [v4]);
    const again = store.allocate(key("a"), [v4]);
    expect(again).toEqual(first);
    expect(store.allocate(key("a", "net1"), [v4]).data?.[0]?.ip).toBe("10.244.1.3");
    store.close();
  });

  it("hands out addresses round-robin: a released address is reused last", () => {
    const store = open();
    const pool = parseCidr("10.0.0.0/29"); // pods .2 .. .6
    const ips = ["a", "b", "c"].map((id) => store.allocate(key(id), [pool]).data?.[0]?.ip);
    expect(ips).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    store.release(key("a"));
    expect(["d", "e", "f"].map((id) => store.allocate(key(id), [pool]).data?.[0]?.ip)).toEqual(["10.0.0.5", "10.0.0.6", "10.0.0.2"]);
    store.close();
  });

  it.each([
    ["10.0.0.0/30", 1],
    ["10.0.0.0/29", 5],
    ["fd00::/126", 2],
  ])("exhausts %s after %i pods, with ERR_POOL_EXHAUSTED naming the pool and nothing half-allocated", (cidr, count) => {
    const store = open();
    const pool = parseCidr(cidr);
    const pools = pool.family === "IPv4" ? [pool, v6] : [v4, pool];
    for (let i = 0; i < count; i++) expect(store.allocate(key(`c${i}`), pools).success).toBe(true);
    const full = store.allocate(key("late"), pools);
    expect(full.success).toBe(false);
    expect(full.error?.code).toBe("ERR_POOL_EXHAUSTED");
    expect(full.error?.message).toContain(cidr);
    expect(store.get(key("late"))).toEqual([]); // all families or none: the other family's address was not taken
    expect(store.usage(pools).map((u) => u.used)).toEqual([count, count]);
    store.close();
  });

  it("DEL releases, and releasing an unknown attachment is success", () => {
    const store = open();
    store.allocate(key("a"), [v4, v6]);
    expect(store.release(key("a")).map((a) => a.ip)).toEqual(["10.244.1.2", "fd00:10:244:1::2"]);
    expect(store.release(key("a"))).toEqual([]);
    expect(store.release(key("never"))).toEqual([]);
    store.close();
  });

  it("refuses a release of an older generation (ABA): a stale seq cannot free a re-allocated attachment", () => {
    const store = open();
    const old = store.allocate(key("a"), [v4]).data?.[0]?.seq ?? 0;
    store.release(key("a"));
    const fresh = store.allocate(key("a"), [v4]).data?.[0];
    expect(fresh?.seq).toBeGreaterThan(old);
    expect(store.release(key("a"), old)).toEqual([]);
    expect(store.markAttached(key("a"), old)).toBe(false);
    expect(store.markAttached(key("a"), fresh?.seq ?? 0)).toBe(true);
    expect(store.get(key("a"))[0]?.state).toBe("attached");
    store.close();
  });

  it("GC releases exactly the attachments not in the valid list", () => {
    const store = open();
    for (const id of ["a", "b", "c"]) store.allocate(key(id), [v4]);
    store.allocate(key("a", "net1"), [v4]);
    const released = store.gc([key("a"), key("c")]);
    expect(released.map((a) => `${a.containerId}/${a.ifName}`).sort()).toEqual(["a/net1", "b/eth0"]);
    expect(store.list().map((a) => a.containerId).sort()).toEqual(["a", "c"]);
    expect(store.gc([]).length).toBe(2);
    store.close();
  });

  it("reaps only pending allocations past the grace period whose interface is gone", () => {
    const store = open();
    store.allocate(key("old-pending"), [v4]);
    store.allocate(key("old-attached"), [v4]);
    store.markAttached(key("old-attached"), store.get(key("old-attached"))[0]?.seq ?? 0);
    store.allocate(key("old-live"), [v4]);
    clock = 100_000;
    store.allocate(key("young"), [v4]);
    const reaped = store.reapPending(60_000, (a) => a.containerId !== "old-live");
    expect(reaped.map((a) => a.containerId)).toEqual(["old-pending"]);
    store.close();
  });

  it("keeps every allocation across a reopen (a restarted node keeps its pods' IPs)", () => {
    const store = open();
    store.allocate(key("a"), [v4, v6]);
    store.allocate(key("b"), [v4]);
    const before = store.list();
    store.close();
    const reopened = open();
    expect(reopened.list()).toEqual(before);
    expect(reopened.allocate(key("c"), [v4]).data?.[0]?.ip).toBe("10.244.1.4");
    reopened.close();
  });

  it("never hands out the same address twice across concurrent store handles", () => {
    const stores = [open(), open(), open()];
    const ips = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const got = stores[i % 3]!.allocate(key(`c${i}`), [v4]);
      ips.add(got.data?.[0]?.ip ?? "");
    }
    expect(ips.size).toBe(60);
    for (const s of stores) s.close();
  });

  it("journals every change so NodeIpam.replay rebuilds the same allocations", () => {
    const store = open();
    store.allocate(key("a"), [v4, v6]);
    store.allocate(key("b"), [v4, v6]);
    store.release(key("a"));
    store.allocate(key("c"), [v4, v6]);
    const replayed = NodeIpam.replay({ podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"] }, store.journal());
    expect(replayed.success).toBe(true);
    expect(replayed.data?.allocations().flatMap((a) => a.ips.map((ip) => ip.address))).toEqual(store.list().map((a) => a.ip));
    store.close();
  });

  it("keeps the allocations still inside the pools when the node's pod CIDRs change", () => {
    const store = open();
    store.allocate(key("a"), [v4, v6]);
    const moved = store.allocate(key("b"), [v4]); // the IPv6 pool was dropped
    expect(moved.data?.map((a) => a.ip)).toEqual(["10.244.1.3"]);
    expect(store.list().map((a) => `${a.containerId} ${a.ip}`)).toEqual(["a 10.244.1.2", "b 10.244.1.3"]);
    store.close();
  });
});

describe("IpamStore.open on a damaged file", () => {
  const garbage = "this is not a SQLite database, it is what a stray write left".repeat(100);

  it("refuses a file that is not a database, naming it, and leaves it where it is (never starts empty)", () => {
    const path = join(dir, "ipam.db");
    writeFileSync(path, garbage);
    expect(() => IpamStore.open(path, { synchronous: "OFF" })).toThrow(IpamDamagedError);
    expect(() => IpamStore.open(path)).toThrow(`IPAM database ${JSON.stringify(path)} is damaged (`);
    expect(readdirSync(dir)).toEqual(["ipam.db"]);
    expect(readFileSync(path, "utf8")).toBe(garbage);
  });

  it("a store held open (the worker's) whose file is overwritten with garbage never hands out the held .2 and .3", () => {
    const path = join(dir, "ipam.db");
    const held = IpamStore.open(path, { synchronous: "OFF" });
    expect([held.allocate(key("a"), [v4]), held.allocate(key("b"), [v4])].map((r) => r.data?.[0]?.ip)).toEqual(["10.244.1.2", "10.244.1.3"]);
    writeFileSync(path, garbage); // in place: same inode, as a stray write or a bad disk does it
    // SQLite may still answer from the WAL (which holds the pages written since the last checkpoint): then an address
    // nobody holds; else the damage error. Never .2 or .3, from the held handle or a new one.
    const next = (id: string, store: () => IpamStore): string => {
      try {
        return store().allocate(key(id), [v4]).data?.[0]?.ip ?? "none";
      } catch (error) {
        expect(error).toBeInstanceOf(IpamDamagedError);
        return "damaged";
      }
    };
    expect(["10.244.1.2", "10.244.1.3"]).not.toContain(next("c", () => held));
    expect(["10.244.1.2", "10.244.1.3"]).not.toContain(next("d", () => IpamStore.open(path)));
    held.close();
  });

  it("readOnly (a metrics scrape) never creates the file and never writes one it reads", () => {
    const path = join(dir, "ipam.db");
    expect(() => IpamStore.open(path, { readOnly: true })).toThrow();
    expect(readdirSync(dir)).toEqual([]);
    const writer = open();
    writer.allocate(key("a"), [v4]);
    const reader = IpamStore.open(path, { readOnly: true });
    expect(reader.usage([v4])[0]?.used).toBe(1);
    expect(() => reader.release(key("a"))).toThrow(/readonly/i);
    reader.close();
    expect(writer.list().map((a) => a.ip)).toEqual(["10.244.1.2"]);
    writer.close();
  });
});
