import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  checkIpamLedger,
  DEFAULT_PROBE_PORT,
  type LedgerFinding,
  type LedgerInput,
  type NodeProbeState,
  podQueriesKey,
  type ProbeInventory,
  type LabState,
  type StateTables,
} from "@flatnet/core";
import { getOkJson, isHealthy } from "../http/client.ts";
import { IpamStore } from "../ipam-store/store.ts";
import type { NodeStateSource } from "../probe/engine.ts";
import { agentEvidence, fromAgentState, kernelStateSource, type EvidencePlace } from "../probe/node-state.ts";
import { readLink } from "../linux/index.ts";
import { agentPaths } from "./agent-process.ts";
import { responderArgs, responderSocket, routerNs, underlayNs } from "./names.ts";
import { loadState } from "./state.ts";
import { flatnetCommand, isRecordedProcessAlive, startInNamespace, stopRecordedProcess } from "./supervisor.ts";
import { waitFor } from "../wait.ts";

// The probe engine's view of a `flatnet lab`: its state file, a responder per pod (started here), the agents' sockets.

export interface LabResponderRecord {
  pod: string;
  pid: number;
  startTime: string;
  socket: string;
}

/** The lab's probe token (0600): its responders dial over TCP (an agent's relay) only for a caller presenting it. */
export const labProbeTokenPath = (stateDir: string): string => join(stateDir, "probe", "token");

/** The lab's probe token, created on first use; the orchestrator (`flatnet check --via agents`) presents it. */
export async function labProbeToken(stateDir: string): Promise<string> {
  const path = labProbeTokenPath(stateDir);
  const existing = await readFile(path, "utf8").catch(() => undefined);
  if (existing !== undefined && existing.trim().length >= 16) return existing.trim();
  await mkdir(join(stateDir, "probe"), { recursive: true });
  const token = randomBytes(24).toString("base64url");
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return token;
}
const recordsPath = (stateDir: string): string => join(stateDir, "probe", "responders.json");

/** The lab's state, or an error naming the directory when there is no lab. */
export async function requireLabState(stateDir: string): Promise<LabState> {
  const state = await loadState(stateDir);
  if (state === undefined) throw new Error(`no lab in "${stateDir}" (no state.json); run "flatnet lab up" first or pass --state-dir`);
  return state;
}

/** Nodes and pods of the lab as the planner sees them; every pod's responder listens on DEFAULT_PROBE_PORT. */
export function labInventory(state: LabState): ProbeInventory {
  return {
    cluster: { name: `lab ${state.prefix}`, source: "lab" },
    nodes: state.nodes.map((n) => ({ name: n.name, podCidrs: n.podCidrs, nodeIps: n.underlayIps })),
    pods: state.pods.map((p) => ({ name: p.name, node: p.node, ips: p.ips, port: DEFAULT_PROBE_PORT })),
  };
}

/**
 * Make sure a responder runs in every pod of the lab (`ip netns exec <pod> flatnet probe-responder ...`),
 * starting only the missing ones; PIDs are recorded in `<state-dir>/probe/responders.json`.
 * Returns the pods whose responder this call started.
 */
export async function startLabResponders(stateDir: string, state?: LabState): Promise<string[]> {
  const lab = state ?? (await requireLabState(stateDir));
  if (lab.runtime === "podman") {
    await waitContainerResponders(stateDir, lab);
    return [];
  }
  await mkdir(join(stateDir, "logs"), { recursive: true });
  await labProbeToken(stateDir); // makes probe/, where the responders' sockets go
  const records = await readRecords(stateDir);
  const started: string[] = [];
  const kept: LabResponderRecord[] = [];
  await Promise.all(
    lab.pods.map(async (pod) => {
      const existing = records.find((r) => r.pod === pod.name);
      if (existing !== undefined && (await isRecordedProcessAlive(existing)) && (await isHealthy({ socketPath: existing.socket }))) {
        kept.push(existing);
        return;
      }
      if (existing !== undefined) await stopRecordedProcess(existing, "SIGKILL").catch(() => false);
      const socket = responderSocket(stateDir, pod.name);
      const args = [
        ...responderCommand(),
        ...responderArgs(stateDir, pod, lab.nodes.find((n) => n.name === pod.node)),
        "--token-file", labProbeTokenPath(stateDir),
        // Targets of a relayed dial: the lab's pods and nodes, nothing else.
        ...[...lab.clusterCidrs, ...lab.nodes.flatMap((n) => n.underlayIps)].flatMap((c) => ["--allow-cidr", c]),
        ...pod.ips.flatMap((ip) => ["--pod-ip", ip]),
      ];
      const process = await startInNamespace({ netns: pod.netns, args, logPath: join(stateDir, "logs", `probe-${pod.name}.log`) });
      kept.push({ pod: pod.name, pid: process.pid, startTime: process.startTime, socket });
      started.push(pod.name);
    }),
  );
  await writeRecords(stateDir, kept);
  // Bounded wait on the real condition: each new responder answers on its control socket.
  const deadline = Date.now() + 20_000 + 500 * started.length;
  for (const pod of started) {
    const record = kept.find((r) => r.pod === pod) as LabResponderRecord;
    const log = join(stateDir, "logs", `probe-${pod}.log`);
    const answered = await waitFor(
      async () => {
        if (await isHealthy({ socketPath: record.socket })) return true;
        if (!(await isRecordedProcessAlive(record))) throw new Error(`the probe responder of ${pod} exited; see ${log}`);
        return false;
      },
      { timeoutMs: Math.max(0, deadline - Date.now()), maxIntervalMs: 50 },
    );
    if (!answered) throw new Error(`the probe responder of ${pod} did not answer on ${record.socket} in time; see ${log}`);
  }
  return started;
}

/** Podman pods run the responder as their container's command, its control socket bind-mounted at responderSocket. */
async function waitContainerResponders(stateDir: string, lab: LabState): Promise<void> {
  const timeoutMs = 20_000;
  for (const pod of lab.pods) {
    const socket = responderSocket(stateDir, pod.name);
    if (!(await waitFor(() => isHealthy({ socketPath: socket }), { timeoutMs, maxIntervalMs: 100 }))) {
      throw new Error(`the probe responder of container ${pod.name} did not answer on ${socket} within ${timeoutMs} ms; see "podman logs ${pod.name}" of ${pod.node}`);
    }
  }
}

/** The light responder bundle next to the CLI when built (dist/probe-responder.js), else `flatnet probe-responder`. */
export function responderCommand(): string[] {
  const [node, main] = flatnetCommand() as [string, string];
  const light = join(dirname(main), "probe-responder.js");
  return existsSync(light) ? [node, light] : [node, main, "probe-responder"];
}

/** Stop the responders of `pods`, by recorded PID after checking they are ours. */
export async function stopLabResponders(stateDir: string, pods: readonly string[]): Promise<void> {
  const records = await readRecords(stateDir);
  await Promise.all(
    records.filter((record) => pods.includes(record.pod)).map(async (record) => {
      await stopRecordedProcess(record, "SIGTERM", 2_000).catch(() => false);
      await rm(record.socket, { force: true });
    }),
  );
  await writeRecords(stateDir, records.filter((record) => !pods.includes(record.pod)));
}

/** The pod MTU as the lab's pods have it (eth0 of the first pod), or 0 when unknown. */
export async function labPodMtu(state: LabState): Promise<number> {
  const pod = state.pods[0];
  if (pod === undefined) return 0;
  const link = await readLink(pod.netns, "eth0").catch(() => undefined);
  return link?.mtu ?? 0;
}

/**
 * The IPAM ledger check of the lab: each node's CNI IPAM database (allocations) against the pods the lab
 * knows and their nodes' pod CIDRs. A node without a database is skipped (nothing recorded, nothing to compare).
 */
export async function labLedgerFindings(stateDir: string, state: LabState): Promise<LedgerFinding[]> {
  const podByContainer = new Map(state.pods.map((p) => [p.containerId, p.name]));
  const allocations: LedgerInput["allocations"] = [];
  const nodesWithLedger = new Set<string>();
  for (const node of state.nodes) {
    const path = join(stateDir, "cni", node.name, "ipam", "flatnet", "ipam.db");
    if (!existsSync(path)) continue;
    const store = IpamStore.open(path, { busyTimeoutMs: 2_000 });
    try {
      for (const a of store.list()) {
        const pod = podByContainer.get(a.containerId);
        allocations.push(pod === undefined ? { node: node.name, ip: a.ip } : { node: node.name, ip: a.ip, pod });
      }
      nodesWithLedger.add(node.name);
    } finally {
      store.close();
    }
  }
  if (nodesWithLedger.size === 0) return [];
  return checkIpamLedger({
    nodes: state.nodes.map((n) => ({ name: n.name, podCidrs: n.podCidrs })),
    allocations,
    pods: state.pods.filter((p) => nodesWithLedger.has(p.node)).map((p) => ({ name: p.name, node: p.node, ips: p.ips })),
  });
}

/**
 * Diagnosis state for the lab: the desired state and pod MTU from each agent's `/v1/state`, the actual state
 * and firewall read from the node's namespace (the lab runs here, as root). A node whose agent does not
 * answer keeps its kernel facts, and the agent outage is reported alongside.
 */
export function labStateSource(stateDir: string, state: LabState, podMtu: number): NodeStateSource {
  // The neighbour table is one per host, shared by every namespace: count its overflows from now on.
  const before = readNeighbourTables();
  const underlay: EvidencePlace = { name: "underlay", netns: underlayNs(state.prefix), role: "underlay", portNodes: new Map(state.nodes.map((n) => [`ul-${n.name}`, n.name])) };
  // The lab knows each pod's namespace (a cluster's agent does not): a pod of a pair being explained is read there too.
  const pods = state.pods.map((p): EvidencePlace => ({ name: podQueriesKey({ pod: p.name }), netns: p.netns, role: "pod", pod: p.name }));
  const kernel = kernelStateSource(
    new Map(
      state.nodes.map((n) => [n.name, { netns: n.netns, podCidrs: n.podCidrs, nodeIps: n.underlayIps, underlayDevice: "eth0", podMtu }]),
    ),
    [...(state.backend === "auto" ? [underlay, { name: "router", netns: routerNs(state.prefix), role: "router" } as const] : [underlay]), ...pods],
  );
  return {
    // Each node's agent answers for its node; the lab reads a node whose agent is down (and the underlay) itself.
    async evidence(queries) {
      const fromAgents = await agentEvidence((node) => ({ socketPath: agentPaths(stateDir, node).socket }), queries);
      const rest = await kernel.evidence!(new Map([...queries].filter(([node]) => !fromAgents.has(node))));
      return new Map([...fromAgents, ...rest]);
    },
    async read(names) {
      const [fromKernel, fromAgents] = await Promise.all([
        kernel.read(names),
        Promise.all(names.map(async (name) => [name, await getOkJson({ socketPath: agentPaths(stateDir, name).socket }, "/v1/state", 3_000).catch((error: Error) => error)] as const)),
      ]);
      const out = new Map<string, NodeProbeState>();
      const [start, now] = await Promise.all([before, readNeighbourTables()]);
      const neighbourTable = now.map((t) => ({ ...t, overflows: t.overflows - (start.find((b) => b.family === t.family)?.overflows ?? t.overflows) }));
      for (const state of fromKernel.values()) state.neighbourTable = neighbourTable;
      for (const [name, body] of fromAgents) {
        const k = fromKernel.get(name) as NodeProbeState;
        if (body instanceof Error) {
          out.set(name, { ...k, error: `agent: ${body.message}` });
          continue;
        }
        const agent = fromAgentState(name, body);
        const merged: NodeProbeState = { ...k };
        if (agent.desired !== undefined) merged.desired = agent.desired as StateTables;
        if (agent.podMtu !== undefined) merged.podMtu = agent.podMtu;
        if (agent.encapOverhead !== undefined) merged.encapOverhead = agent.encapOverhead;
        out.set(name, merged);
      }
      return out;
    },
  };
}

/**
 * The host's ARP and ND tables from the root namespace's /proc (read only; non-root namespaces have no
 * /proc/net/stat/*_cache): overflow count (table_fulls summed over CPUs), entries, gc_thresh3.
 */
export async function readNeighbourTables(): Promise<{ family: "IPv4" | "IPv6"; overflows: number; entries: number; limit: number }[]> {
  const out: { family: "IPv4" | "IPv6"; overflows: number; entries: number; limit: number }[] = [];
  for (const [family, file, sysctl] of [
    ["IPv4", "/proc/net/stat/arp_cache", "/proc/sys/net/ipv4/neigh/default/gc_thresh3"],
    ["IPv6", "/proc/net/stat/ndisc_cache", "/proc/sys/net/ipv6/neigh/default/gc_thresh3"],
  ] as const) {
    try {
      const [header, ...rows] = (await readFile(file, "utf8")).trim().split("\n").map((l) => l.trim().split(/\s+/));
      const col = (name: string): number => (header ?? []).indexOf(name);
      const fulls = rows.reduce((sum, row) => sum + parseInt(row[col("table_fulls")] ?? "0", 16), 0);
      const entries = parseInt(rows[0]?.[col("entries")] ?? "0", 16);
      const limit = Number((await readFile(sysctl, "utf8")).trim());
      out.push({ family, overflows: fulls, entries, limit });
    } catch {
      // not readable here: no evidence either way
    }
  }
  return out;
}

async function readRecords(stateDir: string): Promise<LabResponderRecord[]> {
  try {
    return JSON.parse(await readFile(recordsPath(stateDir), "utf8")) as LabResponderRecord[];
  } catch {
    return [];
  }
}

async function writeRecords(stateDir: string, records: LabResponderRecord[]): Promise<void> {
  await mkdir(join(stateDir, "probe"), { recursive: true });
  await writeFile(recordsPath(stateDir), `${JSON.stringify(records, null, 2)}\n`);
}
