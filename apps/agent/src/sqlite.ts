import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
// node:sqlite on Node 24, and the same module under Bun (the compiled CNI plugin): one driver for both runtimes.
import { DatabaseSync } from "node:sqlite";

export type SqlValue = string | number | bigint | null;
export type Row = Record<string, SqlValue>;

/** The handful of SQLite calls the IPAM and embedded stores make; node:sqlite's DatabaseSync on both Node and Bun. */
export interface SqlDatabase {
  exec(sql: string): void;
  get(sql: string, ...params: SqlValue[]): Row | undefined;
  all(sql: string, ...params: SqlValue[]): Row[];
  run(sql: string, ...params: SqlValue[]): number;
  close(): void;
  /** Whether a transaction is open (false after SQLite rolled one back by itself); undefined where the driver cannot tell. */
  readonly inTransaction: boolean | undefined;
  /** The busy budget this database was opened with (also bounds the retries of retryBusy). */
  readonly busyTimeoutMs: number;
}

export interface OpenOptions {
  /** How long a writer waits for another process's transaction (SQLite busy timeout). */
  busyTimeoutMs?: number;
  /**
   * SQLite `synchronous`. Any level survives SIGKILL of any process at any point: a commit is atomic and complete in
   * the OS page cache. OFF (no fsync) gives up only what a power loss could take, which ends every pod the database
   * describes anyway (its place is /run, a tmpfs). NORMAL fsyncs at checkpoints, i.e. at every process exit.
   */
  synchronous?: "OFF" | "NORMAL" | "FULL";
  /** Opens an existing database for reading only: never creates, converts or writes it (a metrics scrape). */
  readOnly?: boolean;
}

/** Opens (creating) a SQLite database in WAL mode with the given durability (default NORMAL). */
export function openSqlite(path: string, options: OpenOptions = {}): SqlDatabase {
  const busyTimeoutMs = options.busyTimeoutMs ?? 60_000;
  const readOnly = options.readOnly === true;
  if (!readOnly) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(path, { readOnly });
  db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  if (readOnly) return wrap(db, busyTimeoutMs);
  // Switching a new database to WAL (and reading a WAL another process is recovering) can answer SQLITE_BUSY at once,
  // without SQLite's busy handler: seen as "database is locked" when 60 plugin processes open a fresh database at once.
  retryBusy(() => db.exec("PRAGMA journal_mode = WAL"), busyTimeoutMs);
  retryBusy(() => db.exec(`PRAGMA synchronous = ${options.synchronous ?? "NORMAL"}`), busyTimeoutMs);
  return wrap(db, busyTimeoutMs);
}

function wrap(db: DatabaseSync, busyTimeoutMs: number): SqlDatabase {
  const statements = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
  const prepare = (sql: string) => {
    if (!statements.has(sql)) statements.set(sql, db.prepare(sql));
    return statements.get(sql)!;
  };
  return {
    exec: (sql) => db.exec(sql),
    get: (sql, ...params) => prepare(sql).get(...params) as Row | undefined,
    all: (sql, ...params) => prepare(sql).all(...params) as Row[],
    run: (sql, ...params) => Number(prepare(sql).run(...params).changes),
    close: () => db.close(),
    get inTransaction() {
      return (db as { isTransaction?: boolean }).isTransaction;
    },
    busyTimeoutMs,
  };
}

/**
 * Runs `fn` in a write transaction taken up front (BEGIN IMMEDIATE), so concurrent processes (CNI plugins, agents
 * sharing an embedded store) serialise here; "database is locked" on BEGIN is retried within the busy budget.
 */
export function transaction<T>(db: SqlDatabase, fn: () => T): T {
  retryBusy(() => db.exec("BEGIN IMMEDIATE"), db.busyTimeoutMs);
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    if (db.inTransaction !== false) db.exec("ROLLBACK");
    throw error;
  }
}

const BUSY = /database is locked|database table is locked|SQLITE_BUSY/i;

/**
 * Runs `fn`, retrying while SQLite answers "database is locked" (SQLITE_BUSY) in the cases its busy handler does not
 * cover (journal-mode switch, WAL recovery by another process), with a short growing pause, for at most `budgetMs`;
 * then the last error. Any other error is thrown at once.
 */
export function retryBusy<T>(fn: () => T, budgetMs: number, pause: (ms: number) => void = sleepSync): T {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (error) {
      if (!BUSY.test(error instanceof Error ? error.message : String(error)) || Date.now() >= deadline) throw error;
      pause(Math.min(50, 1 << Math.min(attempt, 6)) + Math.random() * 5);
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); // a synchronous pause: the store's API is synchronous
}
