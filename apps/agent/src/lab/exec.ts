import { spawn } from "node:child_process";
import { LabError } from "./errors.ts";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Added to this process's environment. */
  env?: Record<string, string>;
}

/** Runs a program (no shell) and collects its output; throws ERR_LAB_COMMAND naming the command on failure. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new LabError("ERR_LAB_COMMAND", `cannot run "${command}": ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? (signal === null ? 1 : 128), stdout, stderr };
      if (result.code === 0 || options.allowFailure === true) return resolve(result);
      const why = signal === "SIGKILL" ? `timed out after ${timeoutMs} ms` : `exited ${result.code}`;
      reject(
        new LabError("ERR_LAB_COMMAND", `"${[command, ...args].join(" ")}" ${why}: ${stderr.trim() || stdout.trim()}`, {
          details: { command, args: [...args], ...result },
        }),
      );
    });
    child.stdin.on("error", () => {}); // EPIPE when the program exits before reading its input
    child.stdin.end(options.input ?? "");
  });
}
