import { type Cidr, cidrContains, formatCidr, parseCidr, parseIp, type IpFamily, NodeIpam, type NodeIpamEvent, type NodeIpamState, type PodAllocation, type PodKey, type Result, err, ok } from "@flatnet/core";
import { openSqlite, type OpenOptions, type SqlDatabase, transaction } from "../sqlite.ts";

/** A pod IP held by an attachment. `pending` from allocation until the pod's interface is configured, then `attached`. */
export interface Allocation extends PodKey {
  pool: string;
  family: IpFamily;
  ip: string;
  prefix: number;
  gateway: string;
  /** Generation of the attachment's allocation (core NodeIpam seq): a release naming an older seq is refused (no ABA). */
  seq: number;
  state: "pending" | "attached";
  createdMs: number;
}

export interface PoolUsage {
  pool: string;
  family: IpFamily;
  used: number;
  capacity: number;
  free: number;
}

// snapshot: core NodeIpam.toJSON() of the node, rewritten in the transaction of every change.
// journal: the NodeIpamEvents of every change, in order (audit trail; NodeIpam.replay rebuilds from it).
// attachments: what the core does not model: whether the pod's interface was configured, and since when.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attachments (
  container_id TEXT NOT NULL,
  if_name TEXT NOT NULL,
  seq INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'attached')),
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (container_id, if_name)
);
`;

/** Journal rows kept (oldest pruned): enough to audit recent changes without growing forever. */
const JOURNAL_KEEP = 10_000;

/**
 * Durable node IPAM: core's NodeIpam (the allocation logic) made durable in a SQLite database shared by every plugin
 * process of the node. Each change is one IMMEDIATE transaction: read the snapshot, apply the change in the core,
 * write the new snapshot and its journal events. Concurrent ADDs serialise on the database lock, and a SIGKILL at any
 * point leaves the last committed state (SQLite's atomic commit), so no duplicate and no half-made allocation.
 */
export class IpamStore {
  private constructor(
    private readonly db: SqlDatabase,
    private readonly now: () => number,
    private readonly path: string,
  ) {}

  /**
   * Opens (creating) the store. A file that is not a database, or is damaged, is an IpamDamagedError naming it: the
   * store never starts empty over it, since the pods it describes may be running and an empty store would hand out
   * their addresses again. `readOnly` (metrics) never creates, converts or writes anything.
   */
  static open(path: string, options: OpenOptions & { now?: () => number } = {}): IpamStore {
    let db: SqlDatabase | undefined;
    try {
      db = openSqlite(path, options);
      const exists = db.get("SELECT 1 AS ok FROM sqlite_master WHERE name = 'attachments'") !== undefined;
      const opened = db;
      if (!exists && options.readOnly !== true) transaction(opened, () => opened.exec(SCHEMA));
      return new IpamStore(opened, options.now ?? Date.now, path);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // a handle on a damaged file may refuse to close cleanly
      }
      throw damaged(path, error);
    }
  }

  close(): void {
    this.db.close();
  }

  /**
   * Gives the attachment one address per pool (core semantics: idempotent per attachment, all families or none,
   * next-fit so a released IP is reused late, ERR_POOL_EXHAUSTED naming the full pool). A retried ADD gets its
   * addresses back. When the node's pools changed, allocations still inside the new pools are kept.
   */
  allocate(key: PodKey, pools: readonly Cidr[]): Result<Allocation[]> {
    return this.guard(() => transaction(this.db, () => {
      const ipam = this.load(pools.map(formatCidr));
      if (!ipam.success) return ipam;
      const change = ipam.data.allocate(key);
      if (!change.success) return change;
      const allocation = change.data.allocation;
      if (allocation === undefined) throw new Error("invariant: a successful allocate returns its allocation");
      if (change.data.event !== undefined) {
        this.save(ipam.data, [change.data.event]);
        this.db.run(
          "INSERT INTO attachments (container_id, if_name, seq, state, created_ms) VALUES (?, ?, ?, 'pending', ?) " +
            "ON CONFLICT (container_id, if_name) DO UPDATE SET seq = excluded.seq, state = 'pending', created_ms = excluded.created_ms",
          key.containerId, key.ifName, allocation.seq, this.now(),
        );
      }
      return ok(this.flatten(allocation));
    }));
  }

  /** Marks the attachment's allocation of generation `seq` attached; false when it was released meanwhile (the ADD must fail). */
  markAttached(key: PodKey, seq: number): boolean {
    return this.guard(() => transaction(this.db, () => {
      const current = this.load(undefined);
      if (!current.success || current.data.get(key)?.seq !== seq) return false;
      return this.db.run("UPDATE attachments SET state = 'attached' WHERE container_id = ? AND if_name = ? AND seq = ?", key.containerId, key.ifName, seq) > 0;
    }));
  }

  /** Releases every address of the attachment (DEL); releasing nothing is success. With `seq`, only that generation. */
  release(key: PodKey, seq?: number): Allocation[] {
    return this.guard(() => transaction(this.db, () => {
      const ipam = this.load(undefined);
      if (!ipam.success) return [];
      const change = ipam.data.release(seq === undefined ? key : { ...key, seq });
      if (!change.success || change.data.event === undefined || change.data.allocation === undefined) return []; // unknown or stale (ERR_STALE_RELEASE)
      const released = this.flatten(change.data.allocation);
      this.save(ipam.data, [change.data.event]);
      this.db.run("DELETE FROM attachments WHERE container_id = ? AND if_name = ? AND seq = ?", key.containerId, key.ifName, change.data.allocation.seq);
      return released;
    }));
  }

  /** CNI GC: releases every allocation whose attachment is not in `valid`, in one transaction (no race with a listed ADD). */
  gc(valid: readonly PodKey[]): Allocation[] {
    return this.guard(() => transaction(this.db, () => {
      const ipam = this.load(undefined);
      if (!ipam.success) return [];
      const before = this.attachmentRows();
      const { released, events } = ipam.data.gc(valid);
      if (events.length === 0) return [];
      this.save(ipam.data, events);
      for (const a of released) this.db.run("DELETE FROM attachments WHERE container_id = ? AND if_name = ? AND seq = ?", a.containerId, a.ifName, a.seq);
      return released.flatMap((a) => this.flatten(a, before));
    }));
  }

  /** Releases `pending` allocations older than `olderThanMs` for which `isGone` says the pod interface does not exist. */
  reapPending(olderThanMs: number, isGone: (a: Allocation) => boolean): Allocation[] {
    const cutoff = this.now() - olderThanMs;
    const candidates = this.list().filter((a) => a.state === "pending" && a.createdMs <= cutoff && isGone(a));
    // One release per attachment (one entry per address here), seq-guarded: one re-allocated since the scan keeps its new addresses.
    const attachments = new Map(candidates.map((a) => [attachmentId(a), a]));
    return [...attachments.values()].flatMap((a) => this.release(a, a.seq));
  }

  /** The attachment's current addresses (empty when it holds none). */
  get(key: PodKey): Allocation[] {
    const ipam = this.load(undefined);
    const allocation = ipam.success ? ipam.data.get(key) : undefined;
    return allocation === undefined ? [] : this.flatten(allocation);
  }

  /** Every allocation, one entry per address, in seq order. */
  list(): Allocation[] {
    const ipam = this.load(undefined);
    if (!ipam.success) return [];
    const rows = this.attachmentRows();
    return ipam.data.allocations().flatMap((a) => this.flatten(a, rows));
  }

  /** Used and free pod addresses per pool (what STATUS reports as exhaustion before an ADD fails). */
  usage(pools: readonly Cidr[]): PoolUsage[] {
    const ipam = this.load(pools.map(formatCidr));
    if (!ipam.success) return [];
    return ipam.data.usage().map((u) => ({ pool: u.podCidr, family: u.family, used: u.used, capacity: u.capacity, free: u.free }));
  }

  /** The journal, oldest first (NodeIpam.replay of it rebuilds the snapshot while nothing was pruned). */
  journal(): NodeIpamEvent[] {
    return this.db.all("SELECT event FROM journal ORDER BY id").map((r) => JSON.parse(String(r.event)) as NodeIpamEvent);
  }

  // SQLite finds most damage only when it reads the page: any access may be the first to see it.
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw damaged(this.path, error);
    }
  }

  // The node IPAM as committed; with `podCidrs`, rebuilt onto those pools when they differ from the stored ones.
  private load(podCidrs: string[] | undefined): Result<NodeIpam> {
    const row = this.guard(() => this.db.get("SELECT state FROM snapshot WHERE id = 1"));
    const state = row === undefined ? undefined : (JSON.parse(String(row.state)) as NodeIpamState);
    if (state === undefined) {
      if (podCidrs === undefined) return err({ code: "ERR_NOT_FOUND", message: "the node IPAM has no pod CIDRs yet" });
      return NodeIpam.create({ podCidrs });
    }
    if (podCidrs === undefined || sameCidrs(state.podCidrs, podCidrs)) return NodeIpam.fromJSON(state);
    const moved = NodeIpam.create({ podCidrs });
    if (!moved.success) return moved;
    const pools = podCidrs.map((c) => parseCidr(c));
    for (const a of state.allocations) {
      const kept = a.ips.filter((ip) => pools.some((pool) => cidrContains(pool, parseIp(ip))));
      if (kept.length > 0) moved.data.reserve({ containerId: a.containerId, ifName: a.ifName, ips: kept, seq: a.seq });
    }
    const fresh = moved.data.toJSON();
    return NodeIpam.fromJSON({ ...fresh, nextSeq: Math.max(fresh.nextSeq, state.nextSeq) });
  }

  private save(ipam: NodeIpam, events: NodeIpamEvent[]): void {
    this.db.run("INSERT INTO snapshot (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state", JSON.stringify(ipam.toJSON()));
    const at = this.now();
    for (const event of events) this.db.run("INSERT INTO journal (at_ms, event) VALUES (?, ?)", at, JSON.stringify(event));
    this.db.run("DELETE FROM journal WHERE id <= (SELECT MAX(id) FROM journal) - ?", JOURNAL_KEEP);
  }

  // The attachments table by attachmentId: every row, or only `key`'s (one attachment's ADD or DEL reads one row).
  private attachmentRows(key?: PodKey): Map<string, Pick<Allocation, "seq" | "state" | "createdMs">> {
    const rows = this.guard(() =>
      key === undefined ? this.db.all("SELECT * FROM attachments") : this.db.all("SELECT * FROM attachments WHERE container_id = ? AND if_name = ?", key.containerId, key.ifName),
    );
    return new Map(rows.map((r) => [
      attachmentId({ containerId: String(r.container_id), ifName: String(r.if_name) }),
      { seq: Number(r.seq), state: r.state === "attached" ? "attached" : "pending", createdMs: Number(r.created_ms) },
    ]));
  }

  private flatten(allocation: PodAllocation, rows = this.attachmentRows(allocation)): Allocation[] {
    const meta = rows.get(attachmentId(allocation));
    const current = meta !== undefined && meta.seq === allocation.seq ? meta : undefined;
    return allocation.ips.map((ip) => ({
      containerId: allocation.containerId,
      ifName: allocation.ifName,
      pool: ip.podCidr,
      family: ip.family,
      ip: ip.address,
      prefix: ip.prefix,
      gateway: ip.gateway,
      seq: allocation.seq,
      // An allocation without its row predates the row (a crash between statements is impossible: one transaction).
      state: current?.state ?? "attached",
      createdMs: current?.createdMs ?? 0,
    }));
  }
}

function attachmentId(key: PodKey): string {
  return `${key.containerId}\0${key.ifName}`;
}

function sameCidrs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

const DAMAGE = /malformed|not a database|corrupt|file is encrypted/i;

/** The IPAM database is not one, or is damaged: nothing was allocated, and nothing will be until an operator acts. */
export class IpamDamagedError extends Error {
  readonly code = "ERR_IPAM_DAMAGED";
  override readonly name = "IpamDamagedError";
}

// A damage error becomes one naming the file and what to do; any other error (permissions, busy) passes unchanged.
function damaged(path: string, error: unknown): unknown {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof IpamDamagedError || !DAMAGE.test(message)) return error;
  return new IpamDamagedError(
    `IPAM database ${JSON.stringify(path)} is damaged (${message}); flatnet allocates no address rather than guess which ones running pods hold. ` +
      "Delete the pods of this node, then remove the file (and its -wal and -shm) to start afresh",
    { cause: error },
  );
}
