import { z } from "zod";
import { coreError, err, ok, type Result } from "../errors.ts";

// The state file of `flatnet lab` (`<state-dir>/state.json`): written by the lab, read by the lab and the extension.

/** Where a lab keeps its state when no `--state-dir` is given. */
export const DEFAULT_LAB_STATE_DIR = "/run/flatnet/lab";

/** The rule of a lab prefix (`fn-`, `fn-e1-`): its namespaces are named with it, files in /run/netns. */
export const LAB_PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,11}-$/;
export const LAB_PREFIX_RULE = 'start with a lower-case letter, use only a-z, 0-9 and "-", end with "-" and be at most 13 characters';

/** How the lab routes between nodes: host-gw, vxlan, or auto (host-gw within a segment, vxlan across). */
export const LAB_BACKENDS = ["host-gw", "vxlan", "auto"] as const;
export type LabBackend = (typeof LAB_BACKENDS)[number];
/** How lab pods are made: bare namespaces attached by CNI ADD (quick, the default), or podman containers. */
export const LAB_RUNTIMES = ["netns", "podman"] as const;
export type LabRuntime = (typeof LAB_RUNTIMES)[number];

const labAgentSchema = z.object({
  pid: z.number().int().positive(),
  /** /proc/PID/stat field 22: with the PID it identifies the process, so a reused PID is never signalled. */
  startTime: z.string(),
  socket: z.string(),
  log: z.string(),
});

const labNodeSchema = z.object({
  name: z.string().min(1),
  index: z.number().int().positive(),
  netns: z.string(),
  segment: z.number().int().nonnegative(),
  underlayIps: z.array(z.string()),
  podCidrs: z.array(z.string()),
  agent: labAgentSchema.optional(),
});

const labPodSchema = z.object({
  name: z.string().min(1),
  netns: z.string(),
  node: z.string(),
  index: z.number().int().positive(),
  containerId: z.string(),
  ifName: z.string(),
  ips: z.array(z.string()),
});

// The lab's datastore, and the etcd process when it is etcd (run in the underlay namespace).
const labEtcdSchema = z.object({ pid: z.number().int().positive(), startTime: z.string(), log: z.string(), endpoint: z.string() });

/** The lab state file's schema (version 1). */
export const labStateSchema = z.object({
  version: z.literal(1),
  datastore: z.enum(["embedded", "etcd"]).optional(),
  etcd: labEtcdSchema.optional(),
  prefix: z.string(),
  backend: z.enum(LAB_BACKENDS),
  runtime: z.enum(LAB_RUNTIMES).optional(),
  dualStack: z.boolean(),
  podsPerNode: z.number().int().nonnegative(),
  /** The agents' `--resync-interval`, reused when an agent is restarted or a node added. */
  resyncInterval: z.string().optional(),
  createdAt: z.string(),
  clusterCidrs: z.array(z.string()),
  namespaces: z.array(z.string()),
  nodes: z.array(labNodeSchema),
  pods: z.array(labPodSchema),
});

export type LabAgent = z.infer<typeof labAgentSchema>;
export type LabNode = z.infer<typeof labNodeSchema>;
export type LabPod = z.infer<typeof labPodSchema>;
export type LabState = z.infer<typeof labStateSchema>;

/**
 * Validates a parsed lab state file; a failure is `ERR_LAB_STATE` whose message names the first bad key,
 * `invalid at "nodes.0.name": <rule>`, for the caller to prefix with the file's path.
 */
export function safeParseLabState(json: unknown): Result<LabState> {
  const parsed = labStateSchema.safeParse(json);
  if (parsed.success) return ok(parsed.data);
  const issue = parsed.error.issues[0];
  return err(coreError("ERR_LAB_STATE", `invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}`));
}

/**
 * The start time in a /proc/PID/stat line (field 22, clock ticks since boot); undefined for a zombie or dead process.
 * With the PID it identifies a recorded process: a reused PID has another start time.
 * @example startTimeFromStat("4242 (flatnet) S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10") === "987654"
 */
export function startTimeFromStat(stat: string): string | undefined {
  // The command name (field 2) is in parentheses and may contain spaces: split after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return fields[19];
}
