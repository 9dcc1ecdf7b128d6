import { mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { safeParseLabState, type LabState } from "@flatnet/core";
import { LabError } from "./errors.ts";

export { DEFAULT_LAB_STATE_DIR as DEFAULT_STATE_DIR } from "@flatnet/core";

export const statePath = (stateDir: string): string => join(stateDir, "state.json");

/** Reads the lab's state file; undefined when there is none. A corrupt file is an ERR_LAB_STATE error naming the path. */
export async function loadState(stateDir: string): Promise<LabState | undefined> {
  const path = statePath(stateDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new LabError("ERR_LAB_STATE", `lab state file "${path}" is not JSON; run "flatnet lab down" to clear it`, { cause: error });
  }
  const parsed = safeParseLabState(json);
  if (!parsed.success) throw new LabError("ERR_LAB_STATE", `lab state file "${path}" is ${parsed.error.message}; run "flatnet lab down" to clear it`);
  return parsed.data;
}

/** Writes the state file atomically (temp file + rename), so a crash never leaves half a file. */
export async function saveState(stateDir: string, state: LabState): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const path = statePath(stateDir);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(state, null, 2) + "\n");
  await rename(temp, path);
}

/**
 * Takes the lab's lock (an exclusive file holding our PID) for one command; a lock left by a dead process is taken over.
 * Returns the release function.
 */
export async function lockLab(stateDir: string): Promise<() => Promise<void>> {
  await mkdir(stateDir, { recursive: true });
  const path = join(stateDir, "lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new LabError("ERR_LAB_BUSY", `lab in "${stateDir}" is locked by running process ${holder}; wait for it to finish`);
      }
      await rm(path, { force: true });
    }
  }
  throw new LabError("ERR_LAB_BUSY", `cannot lock lab in "${stateDir}"`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
