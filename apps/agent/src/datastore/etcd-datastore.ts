import { Etcd3, EtcdLeaseInvalidError, type IKeyValue, type Watcher } from "etcd3";
import { z } from "zod";
import type { ClusterSnapshot, NodeSnapshot } from "@flatnet/core";
import { DatastoreError, type Datastore, type NodeRegistration } from "./datastore.ts";
import { ConfigError, parseNetworkConfig, type NetworkConfig, type NetworkConfigInput } from "../config/network-config.ts";
import { chooseNodeCidrs } from "./node-cidrs.ts";

// Key layout under the prefix (default /flatnet):
//   <p>/config            network config JSON, written once by whoever creates the store
//   <p>/nodes/<name>      node record JSON (underlay, VTEP MAC, pod CIDRs), on the node's reservation lease
//   <p>/cidrs/<cidr>      owner node name, one key per allocated pod CIDR ("/" -> "-"), same lease: the CAS target
//   <p>/alive/<name>      liveness key on a short lease kept alive by heartbeat(); snapshot() lists only these nodes
// Two leases, because a node that stops heartbeating leaves the snapshot within nodeTtl, but its CIDR is only
// released after reservationTtl (flannel: 24 h), so a node that comes back in time keeps its CIDR and its pods.

export interface EtcdDatastoreOptions {
  endpoints: string[];
  prefix?: string;
  /** Liveness lease TTL in seconds; default 30. */
  nodeTtlSeconds?: number;
  /** Pod CIDR reservation lease TTL in seconds; default 86400. */
  reservationTtlSeconds?: number;
  /** Stored when the store has no config yet; when absent and missing, config() fails. */
  networkConfig?: NetworkConfigInput;
  /** Per-request deadline; default 5000 ms. */
  requestTimeoutMs?: number;
  /** Called on every watch restart cause (compaction, stream error), for logs and metrics. */
  onWatchRestart?: (reason: string) => void;
}

const nodeRecordSchema = z.object({
  name: z.string().min(1),
  underlayIps: z.array(z.string()),
  vtepMac: z.string(),
  underlayMtu: z.number().int().optional(),
  podCidrs: z.array(z.string()).min(1),
  reservationLease: z.string(),
});
type NodeRecord = z.infer<typeof nodeRecordSchema>;

const MAX_ALLOCATION_ATTEMPTS = 16;

export class EtcdDatastore implements Datastore {
  readonly kind = "etcd" as const;
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly nodeTtl: number;
  private readonly reservationTtl: number;
  private cachedConfig: NetworkConfig | undefined;
  /** Leases this process holds per registered node name, renewed by heartbeat(). */
  private readonly held = new Map<string, { registration: NodeRegistration; alive: string; reservation: string }>();
  private readonly listeners = new Set<() => void>();
  private watcher: Watcher | undefined;
  private watchGeneration = 0;
  private watchFailures = 0;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(private readonly options: EtcdDatastoreOptions) {
    this.client = new Etcd3({
      hosts: options.endpoints,
      dialTimeout: options.requestTimeoutMs ?? 5000,
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + (options.requestTimeoutMs ?? 5000)) }),
    });
    this.prefix = (options.prefix ?? "/flatnet").replace(/\/+$/, "");
    this.nodeTtl = options.nodeTtlSeconds ?? 30;
    this.reservationTtl = options.reservationTtlSeconds ?? 86_400;
  }

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].join("/");
  }

  private cidrKey(cidr: string): string {
    return this.key("cidrs", cidr.replace("/", "-"));
  }

  async config(): Promise<NetworkConfig> {
    if (this.cachedConfig) return this.cachedConfig;
    const key = this.key("config");
    if (this.options.networkConfig !== undefined) {
      const wanted = parseNetworkConfig(this.options.networkConfig, "networkConfig option");
      // Create once: the first creator wins, later ones read what is stored.
      await this.client.if(key, "Version", "==", 0).then(this.client.put(key).value(JSON.stringify(wanted))).commit();
    }
    const raw = await this.client.get(key).string();
    if (raw === null) {
      throw new DatastoreError("ERR_NOT_FOUND", `etcd key "${key}" holds no network config and none was given to create it`);
    }
    let data: unknown;
    try {
      data = JSON.parse(raw);
    } catch (cause) {
      throw new ConfigError(`etcd key "${key}": value is not JSON: ${String(cause)}`);
    }
    this.cachedConfig = parseNetworkConfig(data, `etcd key "${key}"`);
    return this.cachedConfig;
  }

  async register(node: NodeRegistration): Promise<NodeSnapshot> {
    const config = await this.config();
    for (let attempt = 0; attempt < MAX_ALLOCATION_ATTEMPTS; attempt++) {
      const all = await this.readAll();
      const existing = all.nodes.get(node.name);
      const reused = existing !== undefined && existing.podCidrs.length === config.clusterCidrs.length;
      const podCidrs = reused ? existing.podCidrs : chooseNodeCidrs(config, node.name, all.cidrs);
      const alive = await this.client.lease(this.nodeTtl, { autoKeepAlive: false }).grant();
      const reservation = await this.client.lease(this.reservationTtl, { autoKeepAlive: false }).grant();
      const { name, underlayIps, vtepMac, underlayMtu } = node;
      const record: NodeRecord = { name, underlayIps, vtepMac, ...(underlayMtu !== undefined ? { underlayMtu } : {}), podCidrs, reservationLease: reservation };
      const nodeKey = this.key("nodes", node.name);
      // CAS: a new node claims CIDR keys that must not exist; a known node must still hold the record we read.
      let txn = reused
        ? this.client.if(nodeKey, "Mod", "==", all.nodeModRevisions.get(node.name) ?? "0")
        : this.client.if(nodeKey, "Version", "==", 0);
      for (const cidr of podCidrs) {
        txn = reused ? txn.and(this.cidrKey(cidr), "Value", "==", node.name) : txn.and(this.cidrKey(cidr), "Version", "==", 0);
      }
      const result = await txn
        .then(
          this.client.put(nodeKey).value(JSON.stringify(record)).lease(reservation),
          ...podCidrs.map((cidr) => this.client.put(this.cidrKey(cidr)).value(node.name).lease(reservation)),
          this.client.put(this.key("alive", node.name)).value(String(Date.now())).lease(alive),
        )
        .commit();
      if (result.succeeded) {
        const previous = this.held.get(node.name);
        this.held.set(node.name, { registration: node, alive, reservation });
        if (existing && existing.reservationLease !== reservation) await this.revokeQuietly(existing.reservationLease);
        if (previous && previous.alive !== alive) await this.revokeQuietly(previous.alive);
        return toSnapshot(record);
      }
      // Lost the race (another agent took a CIDR or rewrote the record): drop our leases and retry on fresh state.
      await this.revokeQuietly(alive);
      await this.revokeQuietly(reservation);
    }
    throw new DatastoreError(
      "ERR_CONFLICT",
      `node "${node.name}": pod CIDR allocation lost ${MAX_ALLOCATION_ATTEMPTS} compare-and-swap races in a row`,
    );
  }

  async heartbeat(name: string): Promise<void> {
    const held = this.held.get(name);
    if (!held) throw new DatastoreError("ERR_NOT_FOUND", `node "${name}" was not registered by this agent; register it first`);
    // Two leases, each on its own keepalive stream: nothing orders them, so renew both in one round trip. Both are
    // awaited (no renewal still in flight once heartbeat returns), and a gone lease wins over a transport error.
    const failures = (await Promise.allSettled([this.keepalive(held.alive), this.keepalive(held.reservation)]))
      .flatMap((result) => (result.status === "rejected" ? [result.reason as unknown] : []));
    const gone = failures.find((error) => error instanceof EtcdLeaseInvalidError);
    if (gone !== undefined) {
      // Lease gone (expired while etcd was unreachable, or revoked): the caller registers again, and gets its
      // CIDR back unchanged if the reservation is still there, a fresh one (and knows it) otherwise.
      this.held.delete(name);
      throw new DatastoreError("ERR_NOT_FOUND", `node "${name}": its etcd lease expired or was revoked; register again`, { cause: gone });
    }
    if (failures.length > 0) throw failures[0];
  }

  private async keepalive(lease: string): Promise<void> {
    const response = await this.leaseKeepAlive(lease);
    if (Number(response) <= 0) throw new EtcdLeaseInvalidError(lease);
  }

  async remove(name: string): Promise<void> {
    const all = await this.readAll();
    const record = all.nodes.get(name);
    const deletes = [this.client.delete().key(this.key("nodes", name)), this.client.delete().key(this.key("alive", name))];
    for (const [cidr, owner] of all.cidrs) if (owner === name) deletes.push(this.client.delete().key(this.cidrKey(cidr)));
    await this.client.if(this.key("nodes", name), "Version", ">", -1).then(...deletes).commit();
    if (record) await this.revokeQuietly(record.reservationLease);
    const held = this.held.get(name);
    this.held.delete(name);
    if (held) await this.revokeQuietly(held.alive);
  }

  async snapshot(): Promise<ClusterSnapshot> {
    const config = await this.config();
    const all = await this.readAll();
    const nodes = [...all.nodes.values()]
      .filter((record) => all.alive.has(record.name))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(toSnapshot);
    return { clusterCidrs: config.clusterCidrs, nodes };
  }

  watch(onChange: () => void): () => void {
    this.listeners.add(onChange);
    if (!this.watcher) this.startWatch();
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) this.stopWatch();
    };
  }

  /** Starts the prefix watch at fromRevision (default: now). Exposed for the compaction test. */
  startWatch(fromRevision?: string): void {
    const generation = ++this.watchGeneration;
    let builder = this.client.watch().prefix(`${this.prefix}/`);
    if (fromRevision !== undefined) builder = builder.startRevision(fromRevision);
    // watcher() attaches at once, so our listeners see a cancel that arrives in the same chunk as "created".
    const watcher = builder.watcher();
    this.watcher = watcher;
    let disconnected = false;
    watcher.on("data", () => {
      this.watchFailures = 0;
      this.signal();
    });
    watcher.on("disconnected", () => {
      disconnected = true;
    });
    watcher.on("connected", () => {
      // The client resumes from its last revision; resync anyway, the loop is level-triggered.
      if (disconnected) this.signal();
      disconnected = false;
    });
    // A cancel from etcd (mvcc: required revision has been compacted) ends this watcher: resync from now.
    // etcd 3.4 leaves cancel_reason empty on compaction, hence the generic reason.
    watcher.on("error", (error: Error) =>
      this.restartWatch(`watch canceled by etcd (revision compacted or server cancel): ${error.message}`, generation),
    );
  }

  private restartWatch(reason: string, generation: number): void {
    if (this.closed || generation !== this.watchGeneration) return;
    this.options.onWatchRestart?.(reason);
    this.cancelWatcher();
    this.signal();
    // Back off when restarts fail in a row (etcd down, permission): 0, 100 ms, 200 ms ... capped at 5 s.
    const delay = this.watchFailures === 0 ? 0 : Math.min(5000, 100 * 2 ** (this.watchFailures - 1));
    this.watchFailures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed && generation === this.watchGeneration && this.listeners.size > 0) this.startWatch();
    }, delay);
  }

  private stopWatch(): void {
    this.watchGeneration++;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.cancelWatcher();
  }

  private cancelWatcher(): void {
    void this.watcher?.cancel().catch(() => undefined);
    this.watcher = undefined;
  }

  private signal(): void {
    for (const listener of [...this.listeners]) listener();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.stopWatch();
    this.client.close();
  }

  private async readAll() {
    const response = await this.client.getAll().prefix(`${this.prefix}/`).exec();
    const nodes = new Map<string, NodeRecord>();
    const nodeModRevisions = new Map<string, string>();
    const cidrs = new Map<string, string>();
    const alive = new Set<string>();
    for (const kv of response.kvs) {
      const key = kv.key.toString().slice(this.prefix.length + 1);
      const [section, ...rest] = key.split("/");
      const name = rest.join("/");
      if (section === "nodes") {
        const record = parseNodeRecord(kv);
        if (record) {
          nodes.set(name, record);
          nodeModRevisions.set(name, kv.mod_revision);
        }
      } else if (section === "cidrs") {
        cidrs.set(name.replace(/-(\d+)$/, "/$1"), kv.value.toString());
      } else if (section === "alive") {
        alive.add(name);
      }
    }
    return { nodes, nodeModRevisions, cidrs, alive };
  }

  private async leaseKeepAlive(lease: string): Promise<string> {
    // etcd3's Lease object cannot adopt an existing ID (a restarted agent), so use the LeaseKeepAlive stream directly.
    const stream = await this.client.leaseClient.leaseKeepAlive();
    try {
      const answer = new Promise<string>((resolve, reject) => {
        stream.on("data", (res: { TTL: string }) => resolve(res.TTL));
        stream.on("error", reject);
      });
      stream.write({ ID: lease });
      return await answer;
    } finally {
      stream.end();
    }
  }

  private async revokeQuietly(lease: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: lease });
    } catch {
      // Already expired or etcd unreachable: the lease's TTL cleans up.
    }
  }
}

/** An etcd node value as a record; undefined (skipped) when it is not JSON or breaks the schema. */
export function parseNodeRecord(kv: Pick<IKeyValue, "value">): NodeRecord | undefined {
  try {
    const parsed = nodeRecordSchema.safeParse(JSON.parse(kv.value.toString()));
    // A malformed record is skipped (never a crash); the reconcile loop simply does not see that node.
    if (parsed.success) return parsed.data;
  } catch {
    // not JSON: skipped the same way
  }
  return undefined;
}

function toSnapshot(record: NodeRecord): NodeSnapshot {
  return { name: record.name, underlayIps: record.underlayIps, podCidrs: record.podCidrs, vtepMac: record.vtepMac };
}
