import {
  type Cidr,
  type CoreError,
  coreError,
  err,
  formatCidr,
  formatIp,
  hostMask,
  type IpFamily,
  ok,
  parseIp,
  type Result,
} from "@flatnet/core";
import { openSqlite, type OpenOptions, type SqlDatabase, transaction } from "./sqlite.ts";

/** One attachment of a pod to the network, as CNI names it. */
export interface AttachmentKey {
  containerId: string;
  ifName: string;
}

/** A pod IP held by an attachment. `pending` from allocation until the pod's interface is configured, then `attached`. */
export interface Allocation extends AttachmentKey {
  pool: string;
  family: IpFamily;
  ip: string;
  prefix: number;
  gateway: string;
  /** Generation of the attachment's allocation: a release that names an older seq is refused (no ABA). */
  seq: number;
  state: "pending" | "attached";
  createdMs: number;
}

export interface PoolUsage {
  pool: string;
  family: IpFamily;
  used: number;
  capacity: bigint;
  free: bigint;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS allocations (
  ip TEXT PRIMARY KEY,
  pool TEXT NOT NULL,
  family TEXT NOT NULL,
  container_id TEXT NOT NULL,
  if_name TEXT NOT NULL,
  seq INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'attached')),
  created_ms INTEGER NOT NULL,
  UNIQUE (container_id, if_name, family)
);
CREATE TABLE IF NOT EXISTS cursors (pool TEXT PRIMARY KEY, last TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1);
`;

/** The usable pod addresses of a pool: network+2 .. last (IPv4: before broadcast). network+0 is the VTEP, +1 the gateway. */
export function poolRange(pool: Cidr): { first: bigint; last: bigint; gateway: bigint } {
  const top = pool.network | hostMask(pool.family, pool.prefix);
  return { first: pool.network + 2n, last: pool.family === "IPv4" ? top - 1n : top, gateway: pool.network + 1n };
}

/**
 * Durable node IPAM: pod IPs by (containerId, ifName) in a SQLite database shared by every plugin process of the node.
 * Every change is one IMMEDIATE transaction, so 200 concurrent ADDs serialise on the database lock and the primary key
 * on `ip` makes a duplicate impossible even under a bug; a SIGKILL at any point leaves the last committed state.
 */
export class IpamStore {
  private constructor(
    private readonly db: SqlDatabase,
    private readonly now: () => number,
  ) {}

  static open(path: string, options: OpenOptions & { now?: () => number } = {}): IpamStore {
    const db = openSqlite(path, options);
    // One-shot, idempotent schema creation; cheap when the tables exist.
    if (db.get("SELECT 1 AS ok FROM sqlite_master WHERE name = 'meta'") === undefined) transaction(db, () => db.exec(SCHEMA));
    return new IpamStore(db, options.now ?? Date.now);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Gives the attachment one address per pool. Idempotent: an attachment that already holds addresses (a retried ADD
   * after a crash) gets the same ones back. Addresses are handed out round-robin from the pool's cursor, so a released
   * IP is reused as late as possible. Fails with ERR_POOL_EXHAUSTED naming the full pool, allocating nothing.
   */
  allocate(key: AttachmentKey, pools: readonly Cidr[]): Result<Allocation[]> {
    try {
      return this.allocateInTransaction(key, pools);
    } catch (error) {
      if (error instanceof PoolExhausted) return err(error.error);
      throw error;
    }
  }

  private allocateInTransaction(key: AttachmentKey, pools: readonly Cidr[]): Result<Allocation[]> {
    return transaction(this.db, () => {
      const existing = this.rowsOf(key);
      const missing = pools.filter((pool) => !existing.some((a) => a.pool === formatCidr(pool)));
      if (missing.length === 0) return ok(existing.filter((a) => pools.some((p) => formatCidr(p) === a.pool)));
      const seq = existing[0]?.seq ?? this.takeSeq();
      const created: Allocation[] = [];
      for (const pool of missing) {
        const picked = this.pick(pool);
        if (!picked.success) throw new PoolExhausted(picked.error); // rolls back the pools already picked
        const allocation: Allocation = { ...key, pool: formatCidr(pool), family: pool.family, ip: picked.data, prefix: pool.prefix,
          gateway: formatIp({ family: pool.family, value: poolRange(pool).gateway }), seq, state: "pending", createdMs: this.now() };
        this.db.run(
          "INSERT INTO allocations (ip, pool, family, container_id, if_name, seq, state, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
          allocation.ip, allocation.pool, allocation.family, key.containerId, key.ifName, seq, allocation.createdMs,
        );
        this.db.run("INSERT INTO cursors (pool, last) VALUES (?, ?) ON CONFLICT (pool) DO UPDATE SET last = excluded.last", allocation.pool, allocation.ip);
        created.push(allocation);
      }
      const all = [...existing, ...created];
      return ok(all.filter((a) => pools.some((p) => formatCidr(p) === a.pool)));
    });
  }

  /** Marks the attachment's allocation of generation `seq` attached; false when it was released meanwhile (the ADD must fail). */
  markAttached(key: AttachmentKey, seq: number): boolean {
    return transaction(this.db, () =>
      this.db.run("UPDATE allocations SET state = 'attached' WHERE container_id = ? AND if_name = ? AND seq = ?", key.containerId, key.ifName, seq) > 0,
    );
  }

  /** Releases every address of the attachment (DEL); releasing nothing is success. With `seq`, only that generation. */
  release(key: AttachmentKey, seq?: number): Allocation[] {
    return transaction(this.db, () => {
      const rows = this.rowsOf(key).filter((a) => seq === undefined || a.seq === seq);
      for (const a of rows) this.db.run("DELETE FROM allocations WHERE ip = ? AND seq = ?", a.ip, a.seq);
      return rows;
    });
  }

  /** CNI GC: releases every allocation whose attachment is not in `valid`, in one transaction (no race with a listed ADD). */
  gc(valid: readonly AttachmentKey[]): Allocation[] {
    const keep = new Set(valid.map((k) => `${k.containerId}\0${k.ifName}`));
    return transaction(this.db, () => {
      const stale = this.list().filter((a) => !keep.has(`${a.containerId}\0${a.ifName}`));
      for (const a of stale) this.db.run("DELETE FROM allocations WHERE ip = ? AND seq = ?", a.ip, a.seq);
      return stale;
    });
  }

  /** Releases `pending` allocations older than `olderThanMs` for which `isGone` says the pod interface does not exist. */
  reapPending(olderThanMs: number, isGone: (a: Allocation) => boolean): Allocation[] {
    const cutoff = this.now() - olderThanMs;
    const candidates = this.list().filter((a) => a.state === "pending" && a.createdMs <= cutoff && isGone(a));
    return transaction(this.db, () => {
      const reaped: Allocation[] = [];
      for (const a of candidates) {
        if (this.db.run("DELETE FROM allocations WHERE ip = ? AND seq = ? AND state = 'pending'", a.ip, a.seq) > 0) reaped.push(a);
      }
      return reaped;
    });
  }

  /** The attachment's current addresses (empty when it holds none). */
  get(key: AttachmentKey): Allocation[] {
    return this.rowsOf(key);
  }

  list(): Allocation[] {
    return this.db.all("SELECT * FROM allocations ORDER BY family, container_id, if_name").map(toAllocation);
  }

  /** Used and free pod addresses per pool (what STATUS reports as exhaustion before an ADD fails). */
  usage(pools: readonly Cidr[]): PoolUsage[] {
    return pools.map((pool) => {
      const used = Number(this.db.get("SELECT COUNT(*) AS n FROM allocations WHERE pool = ?", formatCidr(pool))?.n ?? 0);
      const { first, last } = poolRange(pool);
      const capacity = last - first + 1n;
      const free = capacity - BigInt(used);
      return { pool: formatCidr(pool), family: pool.family, used, capacity, free: free < 0n ? 0n : free };
    });
  }

  private rowsOf(key: AttachmentKey): Allocation[] {
    return this.db
      .all("SELECT * FROM allocations WHERE container_id = ? AND if_name = ? ORDER BY family", key.containerId, key.ifName)
      .map(toAllocation);
  }

  private takeSeq(): number {
    const seq = Number(this.db.get("SELECT value FROM meta WHERE key = 'next_seq'")?.value ?? 1);
    this.db.run("UPDATE meta SET value = ? WHERE key = 'next_seq'", seq + 1);
    return seq;
  }

  private pick(pool: Cidr): Result<string> {
    const name = formatCidr(pool);
    const { first, last } = poolRange(pool);
    const capacity = last - first + 1n;
    const taken = new Set(
      this.db.all("SELECT ip FROM allocations WHERE pool = ?", name).map((r) => parseIp(String(r.ip), pool.family).value),
    );
    if (BigInt(taken.size) >= capacity) {
      return err(coreError("ERR_POOL_EXHAUSTED", `pod CIDR ${JSON.stringify(name)} is exhausted: all ${capacity} pod addresses are allocated`, { pool: name }));
    }
    const cursorText = this.db.get("SELECT last FROM cursors WHERE pool = ?", name)?.last;
    const cursor = typeof cursorText === "string" ? parseIp(cursorText, pool.family).value : first - 1n;
    let candidate = cursor + 1n;
    // At most taken.size + 1 steps: the pool is not full, so a free address is among the next taken.size + 1.
    for (let step = 0; step <= taken.size; step++) {
      if (candidate < first || candidate > last) candidate = first;
      if (!taken.has(candidate)) return ok(formatIp({ family: pool.family, value: candidate }));
      candidate++;
    }
    throw new Error(`invariant: pool ${name} has ${taken.size} of ${capacity} taken but no free address was found`);
  }
}

class PoolExhausted extends Error {
  constructor(readonly error: CoreError) {
    super(error.message);
  }
}

function toAllocation(row: Record<string, unknown>): Allocation {
  const ip = String(row.ip);
  const pool = String(row.pool);
  const prefix = Number(pool.slice(pool.indexOf("/") + 1));
  const family = row.family as IpFamily;
  const network = parseIp(pool.slice(0, pool.indexOf("/")), family).value;
  return {
    containerId: String(row.container_id),
    ifName: String(row.if_name),
    pool,
    family,
    ip,
    prefix,
    gateway: formatIp({ family, value: network + 1n }),
    seq: Number(row.seq),
    state: row.state === "attached" ? "attached" : "pending",
    createdMs: Number(row.created_ms),
  };
}
