import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCidr, type ClusterSnapshot } from "@flatnet/core";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { IpamStore } from "../ipam-store/store.ts";
import type { Datastore } from "../datastore/datastore.ts";
import { registerClusterMetrics } from "./cluster-metrics.ts";
import { DatastoreStats, errorCode, instrumentDatastore } from "../datastore/datastore-stats.ts";

const dir = mkdtempSync(join(tmpdir(), "fnk-metrics-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeDatastore(snapshot: ClusterSnapshot, failing = new Set<string>()): Datastore {
  const fail = (op: string) => {
    if (failing.has(op)) throw Object.assign(new Error(`${op} failed`), { code: "ERR_UNAVAILABLE" });
  };
  return {
    kind: "etcd",
    config: async () => ({ clusterCidrs: snapshot.clusterCidrs, backend: "vxlan", nodeMaskIPv4: 24, nodeMaskIPv6: 64, vni: 1, vxlanPort: 8472 }),
    register: async (node) => (fail("register"), { name: node.name, underlayIps: node.underlayIps, podCidrs: ["10.244.0.0/24"] }),
    heartbeat: async () => fail("heartbeat"),
    remove: async () => undefined,
    snapshot: async () => (fail("snapshot"), snapshot),
    watch: () => () => undefined,
    close: async () => undefined,
  };
}

/** The exposition lines of the metrics whose names start with `prefix`, without HELP/TYPE. */
async function lines(registry: Registry, prefix: string): Promise<string[]> {
  return (await registry.metrics()).split("\n").filter((l) => l.startsWith(prefix)).sort();
}

describe("cluster metrics", () => {
  it("exports datastore kind, call counts and errors by op and code, node CIDRs and pod IPs used/free", async () => {
    const stats = new DatastoreStats();
    const inner = fakeDatastore(
      {
        clusterCidrs: ["10.244.0.0/22"],
        nodes: [
          { name: "a", underlayIps: ["172.31.0.11"], podCidrs: ["10.244.0.0/24"] },
          { name: "b", underlayIps: ["172.31.0.12"], podCidrs: ["10.244.1.0/24"] },
        ],
      },
      new Set(["heartbeat"]),
    );
    const datastore = instrumentDatastore(inner, stats);
    await datastore.register({ name: "a", underlayIps: ["172.31.0.11"], vtepMac: "0e:00:00:00:00:01" });
    await expect(datastore.heartbeat("a")).rejects.toThrow("heartbeat failed");
    await expect(datastore.heartbeat("a")).rejects.toThrow("heartbeat failed");
    stats.recordEvent("watch-restart");

    const db = join(dir, "ipam.db");
    const store = IpamStore.open(db);
    const pool = [parseCidr("10.244.0.0/24")];
    for (const id of ["c1", "c2", "c3"]) expect(store.allocate({ containerId: id, ifName: "eth0" }, pool).success).toBe(true);
    store.close();

    const registry = new Registry();
    // The scrape reads config and snapshot through the uninstrumented store, so it does not count itself here.
    registerClusterMetrics({ registry, datastore: inner, podCidrs: () => ["10.244.0.0/24"], podIpamDb: db, stats });
    expect(await lines(registry, "flatnet_")).toEqual(
      [
        'flatnet_datastore_info{kind="etcd"} 1',
        'flatnet_datastore_errors_total{op="heartbeat",code="ERR_UNAVAILABLE"} 2',
        'flatnet_datastore_events_total{kind="watch-restart"} 1',
        'flatnet_datastore_calls_total{op="register"} 1',
        'flatnet_datastore_calls_total{op="heartbeat"} 2',
        `flatnet_datastore_last_success_timestamp_seconds ${stats.lastSuccessMs / 1000}`,
        'flatnet_cluster_node_cidrs{pool="10.244.0.0/22",state="used"} 2',
        'flatnet_cluster_node_cidrs{pool="10.244.0.0/22",state="free"} 2',
        // 254 usable minus the gateway .1: 253 for pods, 3 used
        'flatnet_node_pod_ips{pod_cidr="10.244.0.0/24",state="used"} 3',
        'flatnet_node_pod_ips{pod_cidr="10.244.0.0/24",state="free"} 250',
      ].sort(),
    );
  });

  it("keeps scraping when the datastore is down and the CNI has no database yet", async () => {
    const registry = new Registry();
    const datastore = fakeDatastore({ clusterCidrs: ["10.244.0.0/16"], nodes: [] }, new Set(["snapshot"]));
    registerClusterMetrics({ registry, datastore, podCidrs: () => ["10.244.7.0/24"], podIpamDb: join(dir, "none.db"), stats: new DatastoreStats() });
    expect(await lines(registry, "flatnet_node_pod_ips")).toEqual(['flatnet_node_pod_ips{pod_cidr="10.244.7.0/24",state="used"} 0']);
    expect(await lines(registry, "flatnet_cluster_node_cidrs")).toEqual([]);
  });

  it("a scrape never opens the IPAM database: the agent's refresh reads it, the scrape serves the last figures", async () => {
    const db = join(dir, "scrape-ipam.db");
    const store = IpamStore.open(db);
    for (const id of ["p1", "p2"]) expect(store.allocate({ containerId: id, ifName: "eth0" }, [parseCidr("10.244.3.0/24")]).success).toBe(true);
    store.close();
    const registry = new Registry();
    const datastore = fakeDatastore({ clusterCidrs: ["10.244.0.0/16"], nodes: [] });
    const metrics = registerClusterMetrics({ registry, datastore, podCidrs: () => ["10.244.3.0/24"], podIpamDb: db, stats: new DatastoreStats(), podIpRefreshMs: 0 });
    const used = ['flatnet_node_pod_ips{pod_cidr="10.244.3.0/24",state="free"} 251', 'flatnet_node_pod_ips{pod_cidr="10.244.3.0/24",state="used"} 2'];
    expect(await lines(registry, "flatnet_node_pod_ips")).toEqual(used);

    // Garbage in place of the database, its access time set before its modification time: under relatime (or
    // strictatime) any read moves it. Scrapes then read neither the file nor anything next to it.
    const garbage = "not a database\n".repeat(64);
    writeFileSync(db, garbage);
    utimesSync(db, new Date(1_000_000), new Date(2_000_000));
    const before = statSync(db, { bigint: true });
    for (let i = 0; i < 3; i++) expect(await lines(registry, "flatnet_node_pod_ips")).toEqual(used);
    const after = statSync(db, { bigint: true });
    expect(after.atimeNs).toBe(before.atimeNs);
    expect(after.ino).toBe(before.ino);

    // The check can fail: the agent's own refresh reads the file (moving its atime), finds it damaged, keeps the last
    // figures and leaves the file as it was.
    metrics.refreshPodIps();
    expect(statSync(db, { bigint: true }).atimeNs).not.toBe(before.atimeNs);
    expect(readFileSync(db, "utf8")).toBe(garbage);
    expect(await lines(registry, "flatnet_node_pod_ips")).toEqual(used);
    metrics.stop();
  });

  it.each([
    [Object.assign(new Error("x"), { code: "ERR_NOT_FOUND" }), "ERR_NOT_FOUND"],
    [Object.assign(new Error("x"), { code: 409 }), "HTTP_409"],
    [Object.assign(new Error("x"), { code: "weird code with spaces" }), "Error"],
    [new TypeError("x"), "TypeError"],
    ["a string", "UNKNOWN"],
    [undefined, "UNKNOWN"],
  ])("labels %s as %s (bounded label values)", (error, code) => {
    expect(errorCode(error)).toBe(code);
  });
});
