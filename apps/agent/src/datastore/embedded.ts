import { type FSWatcher, mkdirSync, watch, writeFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { ClusterSnapshot, NodeSnapshot } from "@flatnet/core";
import { type NetworkConfig, type NetworkConfigInput, parseNetworkConfig } from "../config/network-config.ts";
import { type Datastore, DatastoreError, type NodeRegistration } from "./datastore.ts";
import { chooseNodeCidrs } from "./node-cidrs.ts";
import { openSqlite, type SqlDatabase, transaction } from "../sqlite.ts";

export interface EmbeddedDatastoreOptions {
  /** The SQLite file every agent of the machine opens (they share the filesystem, not the network). */
  path: string;
  /** Stored when the store has none yet; ignored (the stored one wins) afterwards. */
  networkConfig?: NetworkConfigInput;
  /** A node not heartbeating for this long leaves the snapshot. Default 30 s. */
  leaseTtlMs?: number;
  /** An expired node's pod CIDRs are released this long after its lease ran out. Default 1 h. */
  releaseGraceMs?: number;
  /** Fallback poll for changes when file events are missed. Default 5 s. */
  pollIntervalMs?: number;
  /** How long a writer waits for another process's transaction. Default 5 s. */
  busyTimeoutMs?: number;
  /** The clock (tests move it). */
  now?: () => number;
}

/** A watcher whose read failed (store busy) tries again after this long, not at the next poll. */
const RETRY_MS = 50;

interface NodeRow {
  name: string;
  underlay_ips: string;
  vtep_mac: string;
  underlay_mtu: number | null;
  pod_cidrs: string;
  lease_expires: number;
}

// underlay_mtu and registered_at are records for an operator's `sqlite3` (what the node published, when it first took
// its CIDRs): NodeSnapshot has no field for either.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS config (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY,
  underlay_ips TEXT NOT NULL,
  vtep_mac TEXT NOT NULL,
  underlay_mtu INTEGER,
  pod_cidrs TEXT NOT NULL,
  lease_expires INTEGER NOT NULL,
  registered_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO generation (id, value) VALUES (1, 0);
`;

/**
 * The default datastore on one machine: a SQLite file (Node's built-in node:sqlite, WAL) shared by every agent.
 * Registration allocates pod CIDRs inside `BEGIN IMMEDIATE` (one writer at a time across processes) from the
 * core's cluster IPAM rebuilt from the table. Watchers learn of changes from file events on the database's
 * directory, a change counter, and a slow poll; leases expire by the clock, so watchers also wake at the next expiry.
 *
 * Why a notify file: a commit writes the -wal file (an inotify event) and only then publishes itself in the
 * memory-mapped -shm index (no event). A watcher woken by the -wal write can read before the commit is visible, see
 * the old counter, and sleep until the poll. So a writer whose transaction changed the counter rewrites
 * `<db>.notify` AFTER COMMIT returns: the event it raises is ordered after the commit, and the read it triggers sees it.
 */
export class EmbeddedDatastore implements Datastore {
  readonly kind = "embedded" as const;
  readonly path: string;
  private readonly db: SqlDatabase;
  private readonly leaseTtlMs: number;
  private readonly releaseGraceMs: number;
  private readonly pollIntervalMs: number;
  private readonly now: () => number;
  private cachedConfig: NetworkConfig | undefined;
  private readonly listeners = new Set<() => void>();
  private watcher: FSWatcher | undefined;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelayMs = RETRY_MS;
  private checkScheduled = false;
  private lastSeen = "";
  private closed = false;
  /** Set inside a transaction that bumped the counter; the notify file is written once it has committed. */
  private changed: number | undefined;
  private readonly notifyPath: string;

  constructor(options: EmbeddedDatastoreOptions) {
    this.path = resolve(options.path);
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.releaseGraceMs = options.releaseGraceMs ?? 3_600_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 5_000;
    this.now = options.now ?? Date.now;
    this.notifyPath = `${this.path}.notify`;
    for (const [key, value] of [["leaseTtlMs", this.leaseTtlMs], ["releaseGraceMs", this.releaseGraceMs], ["pollIntervalMs", this.pollIntervalMs]] as const) {
      if (!Number.isFinite(value) || value <= 0) throw new DatastoreError("ERR_INVALID_CONFIG", `embedded store option ${key} = ${value} must be a positive number of milliseconds`);
    }
    mkdirSync(dirname(this.path), { recursive: true });
    try {
      this.db = openSqlite(this.path, { busyTimeoutMs: options.busyTimeoutMs ?? 5_000 });
      this.transaction(() => this.db.exec(SCHEMA));
    } catch (error) {
      throw new DatastoreError("ERR_STORE_OPEN", `cannot open the embedded store "${this.path}": ${(error as Error).message}`, { cause: error });
    }
    if (options.networkConfig !== undefined) {
      const config = parseNetworkConfig(options.networkConfig, "network config");
      this.transaction(() => {
        this.db.run("INSERT OR IGNORE INTO config (id, json) VALUES (1, ?)", JSON.stringify(config));
      });
    }
  }

  async config(): Promise<NetworkConfig> {
    if (this.cachedConfig !== undefined) return this.cachedConfig;
    const row = this.db.get("SELECT json FROM config WHERE id = 1") as { json: string } | undefined;
    if (row === undefined) {
      throw new DatastoreError("ERR_STORE_CONFIG", `the embedded store "${this.path}" has no network config yet; the first agent must be given one (--network-config)`);
    }
    this.cachedConfig = parseNetworkConfig(JSON.parse(row.json), `network config in "${this.path}"`);
    return this.cachedConfig;
  }

  async register(node: NodeRegistration): Promise<NodeSnapshot> {
    const config = await this.config();
    const now = this.now();
    return this.transaction(() => {
      const rows = this.db.all("SELECT * FROM nodes") as unknown as NodeRow[];
      // Nodes whose lease ran out longer ago than the grace period give their CIDRs back now.
      const keeps = (row: NodeRow) => row.name === node.name || row.lease_expires + this.releaseGraceMs > now;
      for (const row of rows) if (!keeps(row)) this.db.run("DELETE FROM nodes WHERE name = ?", row.name);
      const kept = rows.filter(keeps);
      const existing = kept.find((row) => row.name === node.name);
      let podCidrs: string[];
      if (existing !== undefined) {
        podCidrs = JSON.parse(existing.pod_cidrs) as string[];
        this.db.run(
          "UPDATE nodes SET underlay_ips = ?, vtep_mac = ?, underlay_mtu = ?, lease_expires = ? WHERE name = ?",
          JSON.stringify(node.underlayIps), node.vtepMac, node.underlayMtu ?? null, now + this.leaseTtlMs, node.name);
      } else {
        const taken = kept.flatMap((row) => (JSON.parse(row.pod_cidrs) as string[]).map((cidr): [string, string] => [cidr, row.name]));
        podCidrs = chooseNodeCidrs(config, node.name, taken);
        this.db.run(
          "INSERT INTO nodes (name, underlay_ips, vtep_mac, underlay_mtu, pod_cidrs, lease_expires, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
          node.name, JSON.stringify(node.underlayIps), node.vtepMac, node.underlayMtu ?? null, JSON.stringify(podCidrs), now + this.leaseTtlMs, now);
      }
      this.bumpGeneration();
      return { name: node.name, underlayIps: [...node.underlayIps], podCidrs, vtepMac: node.vtepMac };
    });
  }

  async heartbeat(name: string): Promise<void> {
    const now = this.now();
    this.transaction(() => {
      const row = this.db.get("SELECT lease_expires FROM nodes WHERE name = ?", name) as { lease_expires: number } | undefined;
      if (row === undefined) throw new DatastoreError("ERR_NOT_FOUND", `node "${name}" is not registered in "${this.path}"; register it again`);
      this.db.run("UPDATE nodes SET lease_expires = ? WHERE name = ?", now + this.leaseTtlMs, name);
      // Only a node coming back to life changes the snapshot; a routine heartbeat wakes nobody.
      if (row.lease_expires <= now) this.bumpGeneration();
    });
  }

  async remove(name: string): Promise<void> {
    this.transaction(() => {
      if (this.db.run("DELETE FROM nodes WHERE name = ?", name) > 0) this.bumpGeneration();
    });
  }

  async snapshot(): Promise<ClusterSnapshot> {
    const config = await this.config();
    const now = this.now();
    const rows = this.db.all("SELECT * FROM nodes ORDER BY name") as unknown as NodeRow[];
    return {
      clusterCidrs: [...config.clusterCidrs],
      nodes: rows
        .filter((row) => row.lease_expires > now)
        .map((row) => ({ name: row.name, underlayIps: JSON.parse(row.underlay_ips) as string[], podCidrs: JSON.parse(row.pod_cidrs) as string[], vtepMac: row.vtep_mac })),
    };
  }

  watch(onChange: () => void): () => void {
    this.listeners.add(onChange);
    if (this.listeners.size === 1) this.startWatching();
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.stopWatching();
    this.db.close();
  }

  private startWatching(): void {
    this.lastSeen = this.observe();
    try {
      // inotify sees writes from every process on the machine. The notify file is the reliable signal (written after
      // the commit); the -wal/-shm/db events stay as an early hint and for writers that do not notify (sqlite3 CLI).
      const name = basename(this.path);
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file.startsWith(name)) this.scheduleCheck();
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      this.watcher = undefined; // the poll below still notices changes
    }
    this.pollTimer = setInterval(() => this.scheduleCheck(), this.pollIntervalMs);
    this.pollTimer.unref();
    this.armExpiryTimer();
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.pollTimer = undefined;
    this.expiryTimer = undefined;
    this.retryTimer = undefined;
  }

  // File events come in bursts (WAL, SHM): one check per turn of the event loop.
  private scheduleCheck(): void {
    if (this.checkScheduled || this.closed) return;
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      this.check();
    });
  }

  private check(): void {
    if (this.closed || this.listeners.size === 0) return;
    let seen: string;
    try {
      seen = this.observe();
      this.armExpiryTimer();
      this.retryDelayMs = RETRY_MS;
    } catch {
      // Busy or briefly unreadable. The event that woke us will not come again, so retry soon (backing off up to the
      // poll interval while it stays unreadable) rather than wait for the poll.
      if (this.retryTimer === undefined) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.scheduleCheck();
        }, this.retryDelayMs);
        this.retryTimer.unref();
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.pollIntervalMs);
      }
      return;
    }
    if (seen === this.lastSeen) return;
    this.lastSeen = seen;
    for (const listener of [...this.listeners]) listener();
  }

  /** The change counter plus which nodes are live now: either changing means the snapshot did. */
  private observe(): string {
    const generation = (this.db.get("SELECT value FROM generation WHERE id = 1") as { value: number }).value;
    const now = this.now();
    const live = (this.db.all("SELECT name FROM nodes WHERE lease_expires > ? ORDER BY name", now) as { name: string }[]).map((r) => r.name);
    return `${generation} ${live.join(",")}`;
  }

  private armExpiryTimer(): void {
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const now = this.now();
    const next = this.db.get("SELECT MIN(lease_expires) AS next FROM nodes WHERE lease_expires > ?", now) as { next: number | null };
    if (next.next === null) return;
    this.expiryTimer = setTimeout(() => this.scheduleCheck(), Math.min(next.next - now + 1, 2_147_483_647));
    this.expiryTimer.unref();
  }

  private bumpGeneration(): void {
    const row = this.db.get("UPDATE generation SET value = value + 1 WHERE id = 1 RETURNING value") as { value: number };
    this.changed = row.value;
  }

  /** Rewrites the notify file so watchers in every process wake after the commit is visible to them. */
  private notify(generation: number): void {
    try {
      writeFileSync(this.notifyPath, `${generation}\n`);
    } catch {
      // A directory we cannot write to (read-only mount): watchers still have the -wal events and the poll.
    }
  }

  // BEGIN IMMEDIATE takes the write lock up front, so two registrations never read the same free CIDR.
  private transaction<T>(body: () => T): T {
    this.changed = undefined;
    try {
      const result = transaction(this.db, body);
      if (this.changed !== undefined) this.notify(this.changed);
      return result;
    } finally {
      this.changed = undefined;
    }
  }
}
