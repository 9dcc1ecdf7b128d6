/**
 * A flatnet lab on this machine, found on its own: the lab's state file (`<stateDir>/state.json`, written
 * atomically by `flatnet lab`) is watched; agent health is whether the recorded agent process (PID and start
 * time) is alive and its API socket exists. No command is run and nothing in any network namespace is touched.
 */
import { existsSync, readFileSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { safeParseLabState, startTimeFromStat, type LabAgent, type LabState } from "@flatnet/core";
import type { AgentHealth, ClusterView } from "../model/cluster-view.ts";
import type { ClusterSource } from "./source.ts";

/** The shell of a terminal inside a lab pod's network namespace (`ip netns exec`, through sudo unless root). */
export function labPodShell(state: { pods: readonly { name: string; netns?: string }[] }, pod: string, uid: number | undefined): { shellPath: string; shellArgs: string[] } | { error: string } {
  const found = state.pods.find((p) => p.name === pod);
  if (!found) return { error: `pod "${pod}" is not in the lab (pods: ${state.pods.map((p) => p.name).join(", ") || "none"})` };
  if (!found.netns || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(found.netns)) return { error: `pod "${pod}" has no usable network namespace in the lab state (netns ${JSON.stringify(found.netns)})` };
  const args = ["netns", "exec", found.netns, "sh"];
  return uid === 0 ? { shellPath: "ip", shellArgs: args } : { shellPath: "sudo", shellArgs: ["ip", ...args] };
}
/** A node's agent as the lab recorded it (the fields health needs). */
export type RecordedAgent = Partial<Pick<LabAgent, "pid" | "startTime" | "socket">>;

export type ReadLabResult = { kind: "absent" } | { kind: "invalid"; message: string } | { kind: "ok"; state: LabState };

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
  const parsed = safeParseLabState(json);
  if (!parsed.success) return { kind: "invalid", message: `lab state "${path}" is ${parsed.error.message}` };
  return { kind: "ok", state: parsed.data };
}

/** /proc/PID/stat field 22 (start time in clock ticks since boot); undefined when the process is gone or a zombie. */
export function processStartTime(pid: number): string | undefined {
  try {
    return startTimeFromStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
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
export function labStateToView(stateDir: string, state: LabState, health: (agent: RecordedAgent | undefined) => AgentHealth): ClusterView {
  return {
    id: `lab:${stateDir}`,
    name: `flatnet lab (${state.prefix.replace(/-$/, "")})`,
    source: "lab",
    clusterCidrs: state.clusterCidrs,
    nodes: state.nodes.map((node) => ({ name: node.name, internalIps: node.underlayIps, podCidrs: node.podCidrs, backend: state.backend, agent: health(node.agent), ready: true })),
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
