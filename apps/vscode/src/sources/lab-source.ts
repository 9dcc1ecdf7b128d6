/**
 * A flatnet lab on this machine, found on its own: the lab's state file (`<stateDir>/state.json`, written
 * atomically by `flatnet lab`) is watched; agent health is whether the recorded agent process (PID and start
 * time) is alive and its API socket exists. No command is run and nothing in any network namespace is touched.
 */
import { existsSync, readFileSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { AgentHealth, ClusterView } from "../model/cluster-view.ts";
import type { ClusterSource } from "./source.ts";

export const DEFAULT_LAB_STATE_DIR = "/run/flatnet/lab";

// Only the fields the view needs; the lab owns the full schema (apps/agent/src/lab/state.ts).
const labStateSchema = z.object({
  prefix: z.string().default("fn-"),
  backend: z.string().optional(),
  clusterCidrs: z.array(z.string()).default([]),
  nodes: z.array(
    z.object({
      name: z.string().min(1),
      underlayIps: z.array(z.string()).default([]),
      podCidrs: z.array(z.string()).default([]),
      backend: z.string().optional(),
      agent: z.object({ pid: z.number().int().positive(), startTime: z.string(), socket: z.string() }).partial().optional(),
    }),
  ),
  pods: z.array(z.object({ name: z.string().min(1), node: z.string(), ips: z.array(z.string()).default([]), netns: z.string().optional() })).default([]),
});
export type LabStateFile = z.infer<typeof labStateSchema>;

/** The shell of a terminal inside a lab pod's network namespace (`ip netns exec`, through sudo unless root). */
export function labPodShell(state: LabStateFile, pod: string, uid: number | undefined): { shellPath: string; shellArgs: string[] } | { error: string } {
  const found = state.pods.find((p) => p.name === pod);
  if (!found) return { error: `pod "${pod}" is not in the lab (pods: ${state.pods.map((p) => p.name).join(", ") || "none"})` };
  if (!found.netns || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(found.netns)) return { error: `pod "${pod}" has no usable network namespace in the lab state (netns ${JSON.stringify(found.netns)})` };
  const args = ["netns", "exec", found.netns, "sh"];
  return uid === 0 ? { shellPath: "ip", shellArgs: args } : { shellPath: "sudo", shellArgs: ["ip", ...args] };
}
/** A node's agent as the lab recorded it. */
export type RecordedAgent = NonNullable<LabStateFile["nodes"][number]["agent"]>;

export type ReadLabResult = { kind: "absent" } | { kind: "invalid"; message: string } | { kind: "ok"; state: LabStateFile };

export function readLabState(stateDir: string): ReadLabResult {
  const path = join(stateDir, "state.json");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { kind: "absent" };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: "invalid", message: `lab state "${path}" is not JSON` };
  }
  const parsed = labStateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { kind: "invalid", message: `lab state "${path}" is invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}` };
  }
  return { kind: "ok", state: parsed.data };
}

/**
 * /proc/PID/stat field 22 (start time in clock ticks since boot); undefined when the process is gone or a zombie.
 * The same rule as the lab's supervisor (apps/agent/src/lab/supervisor.ts `processStartTime`), read synchronously.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  return startTimeFromStat(stat);
}

/** The start time in a /proc/PID/stat line; undefined for a zombie or dead process. */
export function startTimeFromStat(stat: string): string | undefined {
  // The command name (field 2) is in parentheses and may contain spaces: split after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return fields[19];
}

/** Whether the recorded process is still that very process: same PID and, when the lab recorded it, same start time (a reused PID is not alive). */
export function isProcessAlive(pid: number, startTime?: string): boolean {
  if (startTime !== undefined) return processStartTime(pid) === startTime;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Pure mapping; `health` is injected so tests need no processes. */
export function labStateToView(stateDir: string, state: LabStateFile, health: (agent: RecordedAgent | undefined) => AgentHealth): ClusterView {
  return {
    id: `lab:${stateDir}`,
    name: `flatnet lab (${state.prefix.replace(/-$/, "")})`,
    source: "lab",
    clusterCidrs: state.clusterCidrs,
    nodes: state.nodes.map((node) => {
      const backend = node.backend ?? state.backend;
      return { name: node.name, internalIps: node.underlayIps, podCidrs: node.podCidrs, ...(backend ? { backend } : {}), agent: health(node.agent), ready: true };
    }),
    pods: state.pods.map((pod) => ({ namespace: "lab", name: pod.name, node: pod.node, ips: pod.ips, phase: "Running", hostNetwork: false })),
    status: { state: "ready" },
  };
}

export function agentHealthFromProcess(agent: RecordedAgent | undefined): AgentHealth {
  if (!agent?.pid) return "unknown";
  if (!isProcessAlive(agent.pid, agent.startTime)) return "down";
  return agent.socket && !existsSync(agent.socket) ? "degraded" : "healthy";
}

export class LabSource implements ClusterSource {
  readonly id: string;
  #view: ClusterView | undefined;
  #watcher: FSWatcher | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #last = "";
  #onChange: () => void = () => {};

  constructor(
    readonly stateDir: string,
    private readonly options: { pollMs: number; debounceMs: number },
  ) {
    this.id = `lab:${stateDir}`;
  }

  view(): ClusterView | undefined {
    return this.#view;
  }

  start(onChange: () => void): void {
    this.#onChange = onChange;
    this.#reload();
    // fs.watch sees the atomic rename at once; the poll catches a lab created after us and agents dying.
    this.#timer = setInterval(() => this.#reload(), this.options.pollMs);
    this.#watchDir();
  }

  #watchDir(): void {
    if (this.#watcher || !existsSync(this.stateDir)) return;
    try {
      this.#watcher = watch(this.stateDir, () => this.#schedule());
      this.#watcher.on("error", () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      this.#watcher = undefined;
    }
  }

  #schedule(): void {
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#reload();
    }, this.options.debounceMs);
  }

  #reload(): void {
    this.#watchDir();
    const result = readLabState(this.stateDir);
    let view: ClusterView | undefined;
    if (result.kind === "ok") view = labStateToView(this.stateDir, result.state, agentHealthFromProcess);
    else if (result.kind === "invalid") view = { id: this.id, name: "flatnet lab", source: "lab", clusterCidrs: [], nodes: [], pods: [], status: { state: "error", message: result.message } };
    const key = JSON.stringify(view ?? null);
    if (key === this.#last) return;
    this.#last = key;
    this.#view = view;
    this.#onChange();
  }

  dispose(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    this.#watcher?.close();
  }
}
