import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
// node:sqlite on Node 24, and the same module under Bun (the compiled CNI plugin): one driver for both runtimes.
import { DatabaseSync } from "node:sqlite";

export type SqlValue = string | number | bigint | null;
export type Row = Record<string, SqlValue>;

/** The handful of SQLite calls the IPAM store makes; node:sqlite's DatabaseSync on both Node and Bun. */
export interface SqlDatabase {
  exec(sql: string): void;
  get(sql: string, ...params: SqlValue[]): Row | undefined;
  all(sql: string, ...params: SqlValue[]): Row[];
  run(sql: string, ...params: SqlValue[]): number;
  close(): void;
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
}

/** Opens (creating) a SQLite database in WAL mode with the given durability (default NORMAL). */
export function openSqlite(path: string, options: OpenOptions = {}): SqlDatabase {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 60_000}`);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${options.synchronous ?? "NORMAL"}`);
  const statements = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
  const prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  return {
    exec: (sql) => db.exec(sql),
    get: (sql, ...params) => prepare(sql).get(...params) as Row | undefined,
    all: (sql, ...params) => prepare(sql).all(...params) as Row[],
    run: (sql, ...params) => Number(prepare(sql).run(...params).changes),
    close: () => db.close(),
  };
}

/** Runs `fn` in a write transaction taken up front (BEGIN IMMEDIATE), so concurrent plugin processes serialise here. */
export function transaction<T>(db: SqlDatabase, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}
