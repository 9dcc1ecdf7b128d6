import { existsSync } from "node:fs";
import { join } from "node:path";
import { ClusterIpam, type Cidr, safeParseCidr } from "@flatnet/core";
import { Counter, Gauge, type LabelValues, type Registry } from "prom-client";
import { DEFAULT_DATA_DIR } from "../cni/netconf.ts";
import { IpamStore } from "../ipam-store/store.ts";
import type { Datastore } from "../datastore/datastore.ts";
import { datastoreStats, type DatastoreStats } from "../datastore/datastore-stats.ts";

// Cluster-level metrics next to the reconcile loop's: which datastore and how healthy, node CIDRs used/free per
// cluster CIDR, and pod IPs used/free in this node's pod CIDRs (read from the CNI plugin's IPAM database by the agent's
// own timer, never by a scrape: /metrics is unauthenticated and must not open the plugin's file).

/**
 * Where the CNI plugin keeps this node's pod IPAM: its default dataDir + the network name of deploy/'s conflist
 * ("flatnet"), under /run/flatnet, which the agent's DaemonSet mounts. FLATNET_POD_IPAM_DB overrides.
 */
export const DEFAULT_POD_IPAM_DB = join(DEFAULT_DATA_DIR, "flatnet", "ipam.db");

export interface ClusterMetricsOptions {
  registry: Registry;
  datastore: Datastore;
  /** This node's pod CIDRs once registered. */
  podCidrs: () => string[] | undefined;
  podIpamDb?: string;
  stats?: DatastoreStats;
  /** How often the agent re-reads the IPAM database for the pod IP gauges (default 15 s); 0: only on `refreshPodIps()`. */
  podIpRefreshMs?: number;
}

/** What registering returns: refresh the pod IP figures now, and stop the refresh timer. */
export interface ClusterMetricsHandle {
  refreshPodIps(): void;
  stop(): void;
}

export const DEFAULT_POD_IP_REFRESH_MS = 15_000;

/** Pod IPs used/free per pod CIDR as last read from the IPAM database; a scrape only reads this. */
type PodIpFigures = { podCidr: string; used: number; free?: number }[];

/**
 * Reads the plugin's database read-only (never creates, converts or writes it). Undefined when it cannot be read
 * (damaged or busy): the caller keeps its last figures; the plugin reports a damaged file to the runtime, naming it.
 */
function readPodIpFigures(path: string, podCidrs: string[]): PodIpFigures | undefined {
  const cidrs = podCidrs.map((c) => safeParseCidr(c)).filter((r) => r.success).map((r) => r.data as Cidr);
  // The plugin creates its database on the first ADD: none yet means nothing used.
  if (cidrs.length === 0 || !existsSync(path)) return podCidrs.map((podCidr) => ({ podCidr, used: 0 }));
  let store: IpamStore;
  try {
    store = IpamStore.open(path, { readOnly: true, busyTimeoutMs: 1_000 });
  } catch {
    return undefined;
  }
  try {
    return store.usage(cidrs).map((usage) => ({ podCidr: usage.pool, used: usage.used, free: usage.free }));
  } catch {
    return undefined;
  } finally {
    store.close();
  }
}

export function registerClusterMetrics(options: ClusterMetricsOptions): ClusterMetricsHandle {
  const { registry, datastore } = options;
  const stats = options.stats ?? datastoreStats;
  const registers = [registry];
  new Gauge({
    name: "flatnet_datastore_info",
    help: "The datastore this agent uses (value 1).",
    labelNames: ["kind"],
    registers,
    collect() {
      this.set({ kind: datastore.kind }, 1);
    },
  });
  // Counters mirrored from the stats at scrape time (reset, then the totals): they only ever grow.
  const mirror = <L extends string>(name: string, help: string, labelNames: L[], totals: () => [LabelValues<L>, number][]) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, count] of totals()) this.inc(labels, count);
      },
    });
  mirror("flatnet_datastore_errors_total", "Failed datastore calls by operation and error code.", ["op", "code"], () =>
    [...stats.errors].map(([key, count]) => {
      const [op = "", code = ""] = key.split("|");
      return [{ op, code }, count];
    }),
  );
  mirror(
    "flatnet_datastore_events_total",
    "Datastore watch and allocator events by kind: watch-error, watch-restart, relist, allocate, allocate-error.",
    ["kind"],
    () => [...stats.events].map(([kind, count]) => [{ kind }, count]),
  );
  mirror("flatnet_datastore_calls_total", "Datastore calls by operation, successful or not.", ["op"], () => [...stats.calls].map(([op, entry]) => [{ op }, entry.count]));
  new Gauge({
    name: "flatnet_datastore_last_success_timestamp_seconds",
    help: "Unix time of the last successful datastore call (0 before the first).",
    registers,
    collect() {
      this.set(stats.lastSuccessMs / 1000);
    },
  });
  new Gauge({
    name: "flatnet_cluster_node_cidrs",
    help: "Node pod CIDRs per cluster CIDR: used by live nodes, and free.",
    labelNames: ["pool", "state"],
    registers,
    async collect() {
      try {
        const [config, snapshot] = await Promise.all([datastore.config(), datastore.snapshot()]);
        const created = ClusterIpam.create(config);
        if (!created.success) return;
        for (const node of snapshot.nodes) created.data.occupy(node.name, node.podCidrs);
        for (const usage of created.data.usage()) {
          this.set({ pool: usage.pool, state: "used" }, usage.used);
          this.set({ pool: usage.pool, state: "free" }, usage.free);
        }
      } catch {
        // Datastore unreachable: leave the last values; the error counters tell.
      }
    },
  });
  new Gauge({
    name: "flatnet_node_pod_ips",
    help: "Pod IPs in this node's pod CIDRs: used (allocated by the CNI plugin) and free.",
    labelNames: ["pod_cidr", "state"],
    registers,
    collect() {
      this.reset();
      for (const figure of podIps ?? []) {
        this.set({ pod_cidr: figure.podCidr, state: "used" }, figure.used);
        if (figure.free !== undefined) this.set({ pod_cidr: figure.podCidr, state: "free" }, figure.free);
      }
    },
  });
  let podIps: PodIpFigures | undefined;
  const refreshPodIps = () => {
    const path = options.podIpamDb ?? process.env.FLATNET_POD_IPAM_DB ?? DEFAULT_POD_IPAM_DB;
    podIps = readPodIpFigures(path, options.podCidrs() ?? []) ?? podIps;
  };
  refreshPodIps();
  const every = options.podIpRefreshMs ?? DEFAULT_POD_IP_REFRESH_MS;
  const timer = every > 0 ? setInterval(refreshPodIps, every) : undefined;
  timer?.unref();
  return { refreshPodIps, stop: () => clearInterval(timer) };
}

/** FLATNET_POD_IP_REFRESH_MS: milliseconds between the agent's reads of the IPAM database (the lab uses 1 s). */
export function podIpRefreshMs(env: Record<string, string | undefined>): number {
  const ms = Number(env.FLATNET_POD_IP_REFRESH_MS);
  return Number.isInteger(ms) && ms > 0 ? ms : DEFAULT_POD_IP_REFRESH_MS;
}
