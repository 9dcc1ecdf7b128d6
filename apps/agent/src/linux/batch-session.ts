import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { type BatchResult, KernelCommandError, assertNetnsName, classifyKernelMessage, parseBatchFailures } from "./exec.ts";

export interface BatchSessionOptions {
  /** How long one group may take before the child is killed and the group fails (default 30 s). */
  timeoutMs?: number;
}

/** Runs batch line groups; `applyKernelPlan` takes one to use long-lived sessions instead of a process per group. */
export type BatchRunner = (tool: "ip" | "bridge", lines: readonly string[]) => Promise<BatchResult>;

interface Pending {
  base: number; // lines written to this child before the group
  sentinelLine: number;
  token: string;
  lines: readonly string[];
  fresh: boolean; // the group creates or deletes links
  stderr: string[];
  sawToken: boolean;
  resolve: (result: BatchResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

let tokens = 0;

/** True when a group creates or deletes links: iproute2's name -> ifindex cache of every session in the netns is stale after it. */
export function changesLinks(lines: readonly string[]): boolean {
  return lines.some((line) => /^\s*link\s+(add|del|delete)\s/.test(line));
}

/**
 * One long-lived `<tool> -n NETNS -force -batch -` child fed line groups on stdin. iproute2 reads stdin line by line and
 * writes errors to unbuffered stderr, so after each group a sentinel line that always fails (`link show dev fnsentN`:
 * no such device) marks its end: its "Command failed -:K" on stderr says every line before it was processed, and the
 * "Command failed -:N" lines in between name the refused ones (numbered from the child's start, mapped back to the
 * group). The child is spawned on first use and again after it exits; a group that outlasts `timeoutMs` kills it.
 * Groups run one at a time, in call order.
 *
 * iproute2 caches name -> ifindex for the life of the process, so a device deleted and recreated by anyone else makes
 * later lines naming it fail ("No such device"). Hence a group that adds or deletes links runs in a fresh child, and
 * the child is retired after such a group and after any group with a refused line: a stale cache costs one failed
 * sync at most, which the loop retries from a fresh read.
 */
export class BatchSession {
  readonly argv: readonly string[];
  private child: ChildProcessWithoutNullStreams | undefined;
  private written = 0;
  private stderrTail = "";
  private pending: Pending | undefined;
  private retire = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timeoutMs: number;

  constructor(
    readonly tool: "ip" | "bridge",
    readonly netns: string,
    options: BatchSessionOptions = {},
  ) {
    assertNetnsName(netns);
    this.argv = [tool, "-n", netns, "-force", "-batch", "-"];
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The running child's PID, undefined while none runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Feeds `lines` to the session and resolves once the tool processed them all; failures are numbered within `lines`. */
  run(lines: readonly string[], options: BatchSessionOptions = {}): Promise<BatchResult> {
    for (const line of lines) {
      // A line break or a trailing backslash would shift every later line number (and the sentinel's) or join lines.
      if (/[\r\n]|\\$/.test(line)) {
        throw new KernelCommandError(this.argv, 2, `batch line ${JSON.stringify(line)} must not contain a line break or end in a backslash (a continuation)`);
      }
    }
    const result = this.queue.then(() => this.runNow(lines, options.timeoutMs ?? this.timeoutMs));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Ends the child (EOF, then SIGKILL by PID after `graceMs`); a later `run` starts a new one. */
  async close(graceMs = 1_000): Promise<void> {
    await this.queue;
    await this.endChild(graceMs);
  }

  /** The next group runs in a new child (another session of the namespace changed its links). */
  retireChild(): void {
    if (this.child !== undefined) this.retire = true;
  }

  private async endChild(graceMs = 1_000): Promise<void> {
    const child = this.child;
    this.retire = false;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.stdin.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  private spawnChild(): ChildProcessWithoutNullStreams {
    const [file, ...args] = this.argv as [string, ...string[]];
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.written = 0;
    this.stderrTail = "";
    child.stdin.on("error", () => {}); // EPIPE when the child died: "exit" reports it
    child.stdout.on("data", () => {}); // plan lines print nothing worth keeping; drain so the pipe never fills
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => this.onStderr(child, chunk));
    child.on("error", (error) => this.onExit(child, `cannot run ${file}: ${error.message}`, 127));
    // "close", not "exit": it comes after stderr is drained, so the message of a line that ended the tool is kept.
    child.on("close", (code, signal) => this.onExit(child, `${file} exited with ${signal ?? code} before the batch finished`, code ?? 128));
    // An idle session must not keep the agent alive; at the agent's exit the child reads EOF and ends.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
    this.child = child;
    return child;
  }

  private async runNow(lines: readonly string[], timeoutMs: number): Promise<BatchResult> {
    const fresh = changesLinks(lines);
    if (this.retire || fresh) await this.endChild();
    const child = this.child ?? this.spawnChild();
    const token = `fnsent${++tokens % 1_000_000_000}`;
    const base = this.written;
    this.written += lines.length + 1;
    return new Promise<BatchResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.child = undefined;
        child.kill("SIGKILL");
        reject(new KernelCommandError(this.argv, 124, `no answer to the batch within ${timeoutMs} ms; the session was killed`));
      }, timeoutMs);
      this.pending = { base, sentinelLine: this.written, token, lines, fresh, stderr: [], sawToken: false, resolve, reject, timer };
      child.stdin.write(lines.length === 0 ? `link show dev ${token}\n` : `${lines.join("\n")}\nlink show dev ${token}\n`);
    });
  }

  private onStderr(child: ChildProcessWithoutNullStreams, chunk: string): void {
    if (child !== this.child) return;
    const text = this.stderrTail + chunk;
    const parts = text.split("\n");
    this.stderrTail = parts.pop() ?? "";
    for (const line of parts) {
      const pending = this.pending;
      if (pending === undefined) continue; // nothing asked: stray output of a killed group's child cannot reach here
      if (line.includes(`"${pending.token}"`)) {
        pending.sawToken = true;
        continue;
      }
      if (pending.sawToken && line.trim() === `Command failed -:${pending.sentinelLine}`) {
        this.finish(pending, 0);
        continue;
      }
      pending.stderr.push(line);
    }
  }

  private onExit(child: ChildProcessWithoutNullStreams, message: string, exitCode: number): void {
    if (child !== this.child) return;
    this.child = undefined;
    const pending = this.pending;
    if (pending === undefined) return;
    if (this.stderrTail !== "") pending.stderr.push(this.stderrTail);
    pending.stderr.push(message);
    this.finish(pending, exitCode === 0 ? 1 : exitCode);
  }

  private finish(pending: Pending, exitCode: number): void {
    clearTimeout(pending.timer);
    this.pending = undefined;
    // Renumber "Command failed -:K" from the child's count to the group's own.
    const renumbered = pending.stderr.map((line) => {
      const match = /^Command failed -:(\d+)$/.exec(line.trim());
      return match ? `Command failed -:${Number(match[1]) - pending.base}` : line;
    });
    const stderr = renumbered.length > 0 ? renumbered.join("\n") + "\n" : "";
    const failures = parseBatchFailures(stderr, pending.lines);
    if (failures.length > 0 || pending.fresh) this.retire = true;
    pending.resolve({ stdout: "", stderr, exitCode: exitCode !== 0 ? exitCode : failures.length > 0 ? 1 : 0, failures });
  }
}

/** Long-lived batch sessions of one namespace, one per tool; `close` ends both. */
export class NetnsBatchSessions {
  private readonly sessions: Record<"ip" | "bridge", BatchSession>;

  constructor(readonly netns: string, options: BatchSessionOptions = {}) {
    this.sessions = { ip: new BatchSession("ip", netns, options), bridge: new BatchSession("bridge", netns, options) };
  }

  /**
   * A `BatchRunner` for `applyKernelPlan`. A group that adds or deletes links retires the other tool's child too. A
   * group refused for a device it names runs once more in a fresh child (the device may have been recreated outside,
   * leaving the old child's cache stale): plan lines are `replace`/`del`, so running them again is idempotent.
   */
  readonly run: BatchRunner = async (tool, lines) => {
    const session = this.sessions[tool];
    const result = await session.run(lines);
    if (changesLinks(lines)) {
      this.sessions[tool === "ip" ? "bridge" : "ip"].retireChild();
      return result;
    }
    // ENODEV: what a line naming a device gets from a child whose name -> ifindex cache went stale (or the device is gone).
    if (result.exitCode === 0 || classifyKernelMessage(result.stderr) !== "ENODEV") return result;
    return session.run(lines); // the refusal retired the child: this runs in a new one
  };

  session(tool: "ip" | "bridge"): BatchSession {
    return this.sessions[tool];
  }

  async close(): Promise<void> {
    await Promise.all([this.sessions.ip.close(), this.sessions.bridge.close()]);
  }
}
