import { mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { LabError } from "./errors.ts";

export type LabBackend = "host-gw" | "vxlan" | "auto";
export const LAB_BACKENDS: readonly LabBackend[] = ["host-gw", "vxlan", "auto"];
/** How lab pods are made: bare namespaces attached by CNI ADD (quick, the default), or podman containers. */
export type LabRuntime = "netns" | "podman";
export const LAB_RUNTIMES: readonly LabRuntime[] = ["netns", "podman"];
export const DEFAULT_STATE_DIR = "/run/flatnet/lab";

const agentSchema = z.object({
  pid: z.number().int().positive(),
  /** /proc/PID/stat field 22: with the PID it identifies the process, so a reused PID is never signalled. */
  startTime: z.string(),
  socket: z.string(),
  log: z.string(),
});

const nodeSchema = z.object({
  name: z.string(),
  index: z.number().int().positive(),
  netns: z.string(),
  segment: z.number().int().nonnegative(),
  underlayIps: z.array(z.string()),
  podCidrs: z.array(z.string()),
  agent: agentSchema.optional(),
});

const podSchema = z.object({
  name: z.string(),
  netns: z.string(),
  node: z.string(),
  index: z.number().int().positive(),
  containerId: z.string(),
  ifName: z.string(),
  ips: z.array(z.string()),
});

// The lab's datastore, and the etcd process when it is etcd (run in the underlay namespace).
const etcdSchema = z.object({ pid: z.number().int().positive(), startTime: z.string(), log: z.string(), endpoint: z.string() });

const stateSchema = z.object({
  version: z.literal(1),
  datastore: z.enum(["embedded", "etcd"]).optional(),
  etcd: etcdSchema.optional(),
  prefix: z.string(),
  backend: z.enum(["host-gw", "vxlan", "auto"]),
  runtime: z.enum(["netns", "podman"]).optional(),
  dualStack: z.boolean(),
  podsPerNode: z.number().int().nonnegative(),
  /** The agents' `--resync-interval`, reused when an agent is restarted or a node added. */
  resyncInterval: z.string().optional(),
  createdAt: z.string(),
  clusterCidrs: z.array(z.string()),
  namespaces: z.array(z.string()),
  nodes: z.array(nodeSchema),
  pods: z.array(podSchema),
});

export type LabAgent = z.infer<typeof agentSchema>;
export type LabNode = z.infer<typeof nodeSchema>;
export type LabPod = z.infer<typeof podSchema>;
export type LabState = z.infer<typeof stateSchema>;

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
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LabError(
      "ERR_LAB_STATE",
      `lab state file "${path}" is invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}; run "flatnet lab down" to clear it`,
    );
  }
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
