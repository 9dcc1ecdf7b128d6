import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startTimeFromStat, type LabAgent } from "@flatnet/core";
import { spawnInNetns } from "../linux/exec.ts";
import { LabError } from "./errors.ts";
import { waitFor } from "../wait.ts";

/**
 * The command that starts flatnet: the running bundle itself (dist/main.js), or from sources (vitest, tsx) the built
 * bundle next to them. FLATNET_BIN overrides it with a path to a main.js.
 */
export function flatnetCommand(): string[] {
  const override = process.env.FLATNET_BIN;
  if (override !== undefined && override !== "") return [process.execPath, resolve(override)];
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".js")) return [process.execPath, here];
  return [process.execPath, resolve(dirname(here), "../../dist/main.js")];
}

/** Starts a detached process inside a namespace (`ip netns exec` execs it, so the PID is the process's own). */
export async function startInNamespace(options: { netns: string; args: string[]; logPath: string }): Promise<{ pid: number; startTime: string }> {
  const log = openSync(options.logPath, "a");
  try {
    const [file = "", ...args] = options.args;
    const child = spawnInNetns(options.netns, file, args, { detached: true, stdio: ["ignore", log, log] });
    const pid = await new Promise<number>((resolvePid, reject) => {
      child.once("error", (error) => reject(new LabError("ERR_LAB_COMMAND", `cannot start "${options.args.join(" ")}": ${error.message}`)));
      child.once("spawn", () => resolvePid(child.pid ?? 0));
    });
    child.unref();
    const startTime = await processStartTime(pid);
    if (startTime === undefined) {
      throw new LabError("ERR_LAB_AGENT", `process ${pid} in "${options.netns}" exited at once; see ${options.logPath}`);
    }
    return { pid, startTime };
  } finally {
    closeSync(log);
  }
}

/** /proc/PID/stat field 22 (start time in clock ticks since boot); undefined when the process is gone or a zombie. */
export function processStartTime(pid: number): Promise<string | undefined> {
  return readFile(`/proc/${pid}/stat`, "utf8").then(startTimeFromStat, () => undefined);
}

/** Whether the recorded process is still that very process (same PID and start time), not a reused PID. */
export async function isRecordedProcessAlive(agent: Pick<LabAgent, "pid" | "startTime">): Promise<boolean> {
  return (await processStartTime(agent.pid)) === agent.startTime;
}

/**
 * Signals a recorded process after checking it is ours; SIGTERM waits for a clean exit and escalates to SIGKILL.
 * Returns whether a process was signalled.
 */
export async function stopRecordedProcess(
  agent: Pick<LabAgent, "pid" | "startTime">,
  signal: "SIGTERM" | "SIGKILL" = "SIGTERM",
  graceMs = 5_000,
): Promise<boolean> {
  if (!(await isRecordedProcessAlive(agent))) return false;
  process.kill(agent.pid, signal);
  const gone = async (): Promise<boolean> => !(await isRecordedProcessAlive(agent));
  if (await waitFor(gone, { timeoutMs: signal === "SIGKILL" ? 5_000 : graceMs })) return true;
  if (signal === "SIGTERM") {
    process.kill(agent.pid, "SIGKILL");
    await waitFor(gone, { timeoutMs: 5_000 });
  }
  return true;
}

/** Kills a process found in one of the lab's namespaces (crash leftovers), by PID: SIGKILL, it has no state to save. */
export function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
