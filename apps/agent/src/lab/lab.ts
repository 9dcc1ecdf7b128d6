import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { LAB_BACKENDS, LAB_RUNTIMES, type LabBackend, type LabNode, type LabRuntime, type LabState } from "@flatnet/core";
import { tryGetJson } from "../http/client.ts";
import { MAX_NODES, clusterCidrs, planSegments, segmentOf, underlayIpsOf, type SegmentPlan } from "./addressing.ts";
import { agentPaths, fetchAgentNode, startAgentProcess, initialiseStore, deregisterNode, type LabNetworkConfig } from "./agent-process.ts";
import { LabError } from "./errors.ts";
import { nodeName, nodeNs, podName, podNs, routerNs, underlayNs, validatePrefix } from "./names.ts";
import { attachPods } from "./pods.ts";
import { removeAllPodmanPods, removePodmanPods } from "./podman.ts";
import { deployAgent, isDeployLab, prepareDeployment, refuseOnDeployLab, removeDeployedNodes, startDeployedPods, waitDeployedReady, type DeployOptions } from "./deploy.ts";
import { Progress } from "./progress.ts";
import { listNamespaces, missingRoutes, namespacePids } from "../linux/index.ts";
import { DEFAULT_STATE_DIR, loadState, lockLab, saveState } from "./state.ts";
import { isRecordedProcessAlive, killPid, startInNamespace, stopRecordedProcess } from "./supervisor.ts";
import {
  createNamespaces,
  createNode,
  createUnderlay,
  deleteNamespaces,
  listLabNamespaces,
} from "./topology.ts";
import { waitFor } from "../wait.ts";
// `lab up --datastore etcd` runs etcd inside the underlay namespace.
import { LAB_ETCD_ENDPOINT, labEtcdArgs, prepareLabEtcdNetwork, removeNodeFromLabEtcd, waitLabEtcdHealthy } from "./lab-etcd.ts";

export interface LabTarget {
  stateDir?: string;
  progress?: Progress;
}

export interface UpOptions extends LabTarget {
  nodes?: number;
  podsPerNode?: number;
  backend?: LabBackend;
  /** How pods are made: namespaces attached by CNI ADD (default) or podman containers through the installed conflist. */
  runtime?: LabRuntime;
  dualStack?: boolean;
  prefix?: string;
  /** Passed to every agent (`--resync-interval`); tests use a short one to see drift repaired quickly. */
  resyncInterval?: string;
  /** How long to wait for agents to be ready and routes to converge. */
  timeoutMs?: number;
  /** Where nodes meet: the embedded SQLite file (default) or etcd in the underlay namespace. */
  datastore?: "embedded" | "etcd";
  /** Run the DaemonSet of deploy/*.yaml on every node (podman in the node), the API server on a unix socket. */
  deploy?: DeployOptions;
}

const DEFAULT_TIMEOUT_MS = 60_000;

type Context = Required<LabTarget>;

const contextOf = (target: LabTarget): Context => ({
  // Absolute: podman records its storage paths and refuses the same storage named by another relative path.
  stateDir: resolve(target.stateDir ?? DEFAULT_STATE_DIR),
  progress: target.progress ?? new Progress(),
});

type LabShape = Required<Pick<UpOptions, "nodes" | "podsPerNode" | "backend" | "runtime" | "dualStack" | "prefix" | "datastore">> & { resyncInterval: string | undefined };

function validateUpOptions(options: UpOptions): LabShape {
  const nodes = options.nodes ?? 3;
  const podsPerNode = options.podsPerNode ?? 2;
  const backend = options.backend ?? "host-gw";
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new LabError("ERR_LAB_INVALID_OPTION", `--nodes ${nodes} is out of range; it must be an integer from 1 to ${MAX_NODES}`);
  }
  if (!Number.isInteger(podsPerNode) || podsPerNode < 0 || podsPerNode > 100) {
    throw new LabError("ERR_LAB_INVALID_OPTION", `--pods-per-node ${podsPerNode} is out of range; it must be an integer from 0 to 100`);
  }
  if (!LAB_BACKENDS.includes(backend)) {
    throw new LabError("ERR_LAB_INVALID_OPTION", `--backend "${backend}" is unknown; use one of ${LAB_BACKENDS.join(", ")}`);
  }
  // --deploy: pods come from the node's podman through the conflist install-cni wrote.
  const runtime = options.deploy === undefined ? (options.runtime ?? "netns") : "podman";
  if (!LAB_RUNTIMES.includes(runtime)) {
    throw new LabError("ERR_LAB_INVALID_OPTION", `--runtime "${runtime}" is unknown; use one of ${LAB_RUNTIMES.join(", ")}`);
  }
  const datastore = options.datastore ?? "embedded";
  if (datastore !== "embedded" && datastore !== "etcd") {
    throw new LabError("ERR_LAB_INVALID_OPTION", `--datastore "${datastore}" is unknown; use embedded or etcd`);
  }
  return { nodes, podsPerNode, backend, runtime, dualStack: options.dualStack ?? false, prefix: validatePrefix(options.prefix ?? "fn-"), resyncInterval: options.resyncInterval, datastore };
}

/**
 * Brings a lab up and waits until every agent is ready and every node has routes to every other node's pod CIDRs.
 * Run twice with the same flags on a healthy lab, it is a no-op; anything else (other flags, a crashed or half-built
 * lab, leftover namespaces) is removed first and rebuilt from scratch.
 */
export async function labUp(options: UpOptions = {}): Promise<LabState> {
  const shape = validateUpOptions(options);
  const ctx = contextOf(options);
  const release = await lockLab(ctx.stateDir);
  try {
    const existing = await loadStateIfReadable(ctx.stateDir, (message) => ctx.progress.line(`ignoring unreadable state: ${message}`));
    if (existing !== undefined && sameShape(existing, shape) && isDeployLab(ctx.stateDir) === (options.deploy !== undefined) && (await isHealthy(existing))) {
      ctx.progress.line(`lab "${shape.prefix}" already up with ${existing.nodes.length} nodes (${existing.backend}); nothing to do`);
      return existing;
    }
    const leftovers = await listLabNamespaces(shape.prefix);
    if (existing !== undefined || leftovers.length > 0) {
      await ctx.progress.step("removed the previous lab (stale, crashed or built with other flags)", () =>
        removeLabObjects(ctx.stateDir, existing, shape.prefix),
      );
    }
    return await build(ctx, shape, options);
  } finally {
    await release();
  }
}

async function build(ctx: Context, shape: LabShape, options: UpOptions): Promise<LabState> {
  const { prefix, backend, dualStack } = shape;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // Checked (API socket, manifests, image) before anything is built.
  const deployment = options.deploy === undefined ? undefined : await ctx.progress.step(
    (d) => `deploy: ${options.deploy?.deployDir} (image ${d.image.reference.join(" ")}), API ${options.deploy?.kubeApiSocket}, cluster ${d.network.clusterCidrs.join(" ")}`,
    () => prepareDeployment(ctx.stateDir, options.deploy!),
  );
  const state: LabState = {
    version: 1,
    datastore: shape.datastore,
    prefix,
    backend,
    ...(shape.runtime === "netns" ? {} : { runtime: shape.runtime }),
    dualStack,
    podsPerNode: shape.podsPerNode,
    ...(options.resyncInterval === undefined ? {} : { resyncInterval: options.resyncInterval }),
    createdAt: new Date().toISOString(),
    clusterCidrs: clusterCidrs(dualStack),
    namespaces: [],
    nodes: [],
    pods: [],
  };
  // The namespaces are recorded before they exist, so `down` after a crash at any point removes them.
  state.namespaces.push(underlayNs(prefix), ...(backend === "auto" ? [routerNs(prefix)] : []));
  await saveState(ctx.stateDir, state);

  const segments = await ctx.progress.step(
    (made) => `underlay ${underlayNs(prefix)}: ${made.map((s) => `${s.bridge} ${s.subnets.join(" ")}`).join(", ")}${made.length > 1 ? `, joined by ${routerNs(prefix)}` : ""}`,
    () => createUnderlay(prefix, backend, dualStack),
  );
  if (deployment !== undefined) state.clusterCidrs = [...deployment.network.clusterCidrs];
  else if (shape.datastore === "etcd") {
    state.etcd = await ctx.progress.step(
      (etcd) => `datastore etcd ${LAB_ETCD_ENDPOINT} in ${underlayNs(prefix)} (pid ${etcd.pid}, log ${etcd.log}): cluster ${state.clusterCidrs.join(" ")}, backend ${backend}`,
      () => startLabEtcd(ctx.stateDir, prefix, segments, { clusterCidrs: state.clusterCidrs, backend }),
    );
    await saveState(ctx.stateDir, state);
  } else {
    await ctx.progress.step(
      `datastore ${join(ctx.stateDir, "store")}: cluster ${state.clusterCidrs.join(" ")}, backend ${backend}`,
      () => initialiseStore(ctx.stateDir, { clusterCidrs: state.clusterCidrs, backend }),
    );
  }
  state.nodes = Array.from({ length: shape.nodes }, (_, i) => labNodeFor(prefix, backend, dualStack, i + 1));
  state.namespaces.push(...state.nodes.map((node) => node.netns));
  await saveState(ctx.stateDir, state);
  await ctx.progress.step(`node namespaces ${state.nodes.map((node) => node.netns).join(", ")}`, () =>
    Promise.all(state.nodes.map((node) => wireNode(prefix, node, segments))),
  );
  for (const node of state.nodes) {
    node.agent = await ctx.progress.step(
      (agent) => `agent ${node.name} started in ${node.netns} (pid ${agent.pid}, log ${agent.log})`,
      () => (deployment === undefined ? startAgentProcess(ctx.stateDir, node, state.resyncInterval, state.datastore) : deployAgent(ctx.stateDir, node, deployment)),
    );
    await saveState(ctx.stateDir, state);
  }
  await ctx.progress.step(`agents ready (${state.nodes.length}/${state.nodes.length})`, () =>
    Promise.all(state.nodes.map((node) => (deployment === undefined ? waitAgentReady(ctx.stateDir, node, timeoutMs) : waitDeployedReady(ctx.stateDir, node, deployment, timeoutMs)))),
  );
  for (const node of state.nodes) node.podCidrs = (await fetchAgentNode(ctx.stateDir, node)).podCidrs;
  await saveState(ctx.stateDir, state);
  ctx.progress.line(`pod CIDRs: ${state.nodes.map((node) => `${node.name} ${node.podCidrs.join(" ")}`).join(", ")}`);
  if (shape.podsPerNode > 0) {
    await ctx.progress.step(`${shape.nodes * shape.podsPerNode} pods attached (${shape.podsPerNode} per node)`, async () => {
      for (const node of state.nodes) await addPods(ctx.stateDir, state, node, shape.podsPerNode);
    });
  }
  await ctx.progress.step(`routes converged on ${state.nodes.length} nodes`, () => waitConverged(state, timeoutMs));
  const runtime = shape.runtime === "netns" ? "" : `, runtime ${shape.runtime}`;
  ctx.progress.line(`lab "${prefix}" up: ${state.nodes.length} nodes, ${state.pods.length} pods, backend ${backend}${runtime}${dualStack ? ", dual-stack" : ""}`);
  return state;
}

function labNodeFor(prefix: string, backend: LabBackend, dualStack: boolean, index: number): LabNode {
  const name = nodeName(index);
  const segment = segmentOf(backend, index);
  return { name, index, netns: nodeNs(prefix, name), segment, underlayIps: underlayIpsOf(segment, index, dualStack), podCidrs: [] };
}

async function wireNode(prefix: string, node: LabNode, segments = planSegments("auto", false)): Promise<void> {
  const segment = segments[node.segment];
  if (segment === undefined) throw new Error(`invariant: segment ${node.segment} of ${node.name} exists`);
  await createNode(prefix, { netns: node.netns, port: `ul-${node.name}`, segment, underlayIps: node.underlayIps, segments });
}

async function addPods(stateDir: string, state: LabState, node: LabNode, count: number): Promise<void> {
  const pods = Array.from({ length: count }, (_, i) => {
    const index = i + 1;
    return { name: podName(node.name, index), netns: podNs(state.prefix, node.name, index), node: node.name, index };
  });
  state.namespaces.push(...pods.map((pod) => pod.netns));
  await saveState(stateDir, state);
  const runtime = state.runtime ?? "netns";
  // A container runtime makes its pods' namespaces itself; the lab names them afterwards.
  if (runtime === "netns") await createNamespaces(pods.map((pod) => pod.netns));
  const attached = isDeployLab(stateDir) ? await startDeployedPods(stateDir, node, pods) : await attachPods(stateDir, node, pods, runtime);
  state.pods.push(...attached);
  await saveState(stateDir, state);
}

function sameShape(state: LabState, shape: LabShape): boolean {
  return (
    state.prefix === shape.prefix &&
    state.backend === shape.backend &&
    (state.runtime ?? "netns") === shape.runtime &&
    state.dualStack === shape.dualStack &&
    state.nodes.length === shape.nodes &&
    state.podsPerNode === shape.podsPerNode &&
    state.resyncInterval === shape.resyncInterval &&
    (state.datastore ?? "embedded") === shape.datastore &&
    state.pods.length === shape.nodes * shape.podsPerNode
  );
}

async function isHealthy(state: LabState): Promise<boolean> {
  const present = new Set(await listNamespaces());
  if (!state.namespaces.every((name) => present.has(name))) return false;
  if (state.etcd !== undefined && !(await isRecordedProcessAlive(state.etcd))) return false;
  for (const node of state.nodes) {
    if (node.agent === undefined || !(await isRecordedProcessAlive(node.agent))) return false;
  }
  return true;
}

async function waitAgentReady(stateDir: string, node: LabNode, timeoutMs: number): Promise<void> {
  const { socket, log } = agentPaths(stateDir, node.name);
  const ready = await waitFor(
    async () => {
      if (node.agent !== undefined && !(await isRecordedProcessAlive(node.agent))) {
        throw new LabError("ERR_LAB_AGENT", `agent ${node.name} (pid ${node.agent.pid}) exited; see ${log}`);
      }
      return (await tryGetJson({ socketPath: socket }, "/readyz", 1_000))?.status === 200;
    },
    { timeoutMs, maxIntervalMs: 100 },
  );
  if (!ready) throw new LabError("ERR_LAB_TIMEOUT", `agent ${node.name} not ready within ${timeoutMs} ms; see ${log}`);
}

/** Waits until every node has a flatnet route to every other node's pod CIDRs. */
export async function waitConverged(state: LabState, timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<void> {
  const pending = async (): Promise<string[]> => {
    const gaps: string[] = [];
    for (const node of state.nodes) {
      const expected = state.nodes.filter((peer) => peer.name !== node.name).flatMap((peer) => peer.podCidrs);
      const missing = await missingRoutes(node.netns, expected);
      if (missing.length > 0) gaps.push(`${node.name} lacks ${missing.join(", ")}`);
    }
    return gaps;
  };
  if (await waitFor(async () => (await pending()).length === 0, { timeoutMs, maxIntervalMs: 100 })) return;
  throw new LabError("ERR_LAB_TIMEOUT", `routes did not converge within ${timeoutMs} ms: ${(await pending()).join("; ")}`);
}

export interface DownReport {
  namespaces: string[];
  processes: number[];
}

/** Removes everything the lab made and only that: its processes, its namespaces (recorded and by shape), the state dir. */
export async function labDown(target: LabTarget & { prefix?: string } = {}): Promise<DownReport> {
  const ctx = contextOf(target);
  const release = await lockLab(ctx.stateDir);
  let report: DownReport;
  try {
    const state = await loadStateIfReadable(ctx.stateDir);
    const prefix = validatePrefix(target.prefix ?? state?.prefix ?? "fn-");
    report = await removeLabObjects(ctx.stateDir, state, prefix);
    ctx.progress.line(
      `removed ${report.namespaces.length} namespaces and stopped ${report.processes.length} processes of lab "${prefix}"`,
    );
  } finally {
    await release();
  }
  await rm(ctx.stateDir, { recursive: true, force: true });
  return report;
}

async function removeLabObjects(stateDir: string, state: LabState | undefined, prefix: string): Promise<DownReport> {
  const processes: number[] = [];
  // Containers first, while the agents still answer: each one's CNI DEL frees its veth and reservation.
  await removeAllPodmanPods(stateDir, (node) => nodeNs(prefix, node));
  await removeDeployedNodes(stateDir);
  await Promise.all(
    (state?.nodes ?? []).map(async (node) => {
      if (node.agent !== undefined && (await stopRecordedProcess(node.agent, "SIGTERM", 3_000))) processes.push(node.agent.pid);
    }),
  );
  if (state?.etcd !== undefined && (await stopRecordedProcess(state.etcd, "SIGTERM", 3_000))) processes.push(state.etcd.pid);
  const present = new Set(await listNamespaces());
  const recorded = (state?.namespaces ?? []).filter((name) => present.has(name));
  const namespaces = [...new Set([...recorded, ...(await listLabNamespaces(prefix))])];
  // Whatever still runs inside the lab's namespaces is a leftover of the lab (a crashed run's agent, a responder).
  for (const name of namespaces) {
    for (const pid of await namespacePids(name)) {
      killPid(pid);
      processes.push(pid);
    }
  }
  await deleteNamespaces(namespaces);
  // Keep the lock (held by the caller); everything else in the state dir was made by the lab.
  const entries = await readdir(stateDir).catch(() => [] as string[]);
  await Promise.all(entries.filter((entry) => entry !== "lock").map((entry) => rm(join(stateDir, entry), { recursive: true, force: true })));
  return { namespaces, processes };
}

/** The recorded state; undefined when there is none or it is unreadable (a crashed write), which `up`/`down` rebuild over. */
async function loadStateIfReadable(stateDir: string, onUnreadable?: (message: string) => void): Promise<LabState | undefined> {
  try {
    return await loadState(stateDir);
  } catch (error) {
    if (!(error instanceof LabError)) throw error;
    onUnreadable?.(error.message);
    return undefined;
  }
}

async function requireState(stateDir: string): Promise<LabState> {
  const state = await loadState(stateDir);
  if (state === undefined) throw new LabError("ERR_LAB_NOT_FOUND", `no lab in "${stateDir}"; run "flatnet lab up" first`);
  return state;
}

/** Runs `change` under the lab's lock on the state read after taking it; no lab is an error before the lock (which would create the directory). */
async function withLockedState<T>(stateDir: string, change: (state: LabState) => Promise<T>): Promise<T> {
  await requireState(stateDir);
  const release = await lockLab(stateDir);
  try {
    return await change(await requireState(stateDir));
  } finally {
    await release();
  }
}

function requireNode(state: LabState, name: string): LabNode {
  const node = state.nodes.find((candidate) => candidate.name === name);
  if (node === undefined) {
    throw new LabError("ERR_LAB_NOT_FOUND", `node "${name}" is not in the lab; nodes: ${state.nodes.map((n) => n.name).join(", ") || "none"}`);
  }
  return node;
}

export interface AgentStatus {
  pid?: number;
  running: boolean;
  healthy: boolean;
  ready: boolean;
  node?: unknown;
}

export interface LabStatus {
  prefix: string;
  stateDir: string;
  backend: LabBackend;
  dualStack: boolean;
  clusterCidrs: string[];
  nodes: (Omit<LabNode, "agent"> & { agent: AgentStatus; pods: { name: string; netns: string; ips: string[] }[] })[];
}

/** Nodes, pod CIDRs, pods and IPs, and each agent's health as its own API reports it. */
export async function labStatus(target: LabTarget = {}): Promise<LabStatus> {
  const ctx = contextOf(target);
  const state = await requireState(ctx.stateDir);
  const nodes = await Promise.all(
    state.nodes.map(async (node) => {
      const { agent: recorded, ...rest } = node;
      const { socket } = agentPaths(ctx.stateDir, node.name);
      const running = recorded !== undefined && (await isRecordedProcessAlive(recorded));
      const [health, ready, self] = running
        ? await Promise.all(["/healthz", "/readyz", "/v1/node"].map((path) => tryGetJson({ socketPath: socket }, path, 1_000)))
        : [];
      const agent: AgentStatus = {
        ...(recorded === undefined ? {} : { pid: recorded.pid }),
        running,
        healthy: health?.status === 200,
        ready: ready?.status === 200,
        ...(self?.status === 200 ? { node: self.body } : {}),
      };
      const pods = state.pods.filter((pod) => pod.node === node.name).map(({ name, netns, ips }) => ({ name, netns, ips }));
      return { ...rest, agent, pods };
    }),
  );
  return { prefix: state.prefix, stateDir: ctx.stateDir, backend: state.backend, dualStack: state.dualStack, clusterCidrs: state.clusterCidrs, nodes };
}

/** Joins a new node (the next free index) with the lab's pods per node, and waits until every node routes to it. */
export async function addNode(target: LabTarget & { resyncInterval?: string; timeoutMs?: number } = {}): Promise<LabNode> {
  const ctx = contextOf(target);
  refuseOnDeployLab(ctx.stateDir, "add-node");
  return withLockedState(ctx.stateDir, async (state) => {
    const index = Math.max(0, ...state.nodes.map((node) => node.index)) + 1;
    if (index > MAX_NODES) throw new LabError("ERR_LAB_INVALID_OPTION", `cannot add node${index}: a lab has at most ${MAX_NODES} nodes`);
    const node = labNodeFor(state.prefix, state.backend, state.dualStack, index);
    state.nodes.push(node);
    state.namespaces.push(node.netns);
    await saveState(ctx.stateDir, state);
    await ctx.progress.step(`node ${node.name} wired to the underlay (${node.underlayIps.join(" ")})`, () =>
      wireNode(state.prefix, node, planSegments(state.backend, state.dualStack)),
    );
    node.agent = await ctx.progress.step(
      (agent) => `agent ${node.name} started (pid ${agent.pid})`,
      () => startAgentProcess(ctx.stateDir, node, target.resyncInterval ?? state.resyncInterval, state.datastore),
    );
    await saveState(ctx.stateDir, state);
    await waitAgentReady(ctx.stateDir, node, target.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    node.podCidrs = (await fetchAgentNode(ctx.stateDir, node)).podCidrs;
    await saveState(ctx.stateDir, state);
    if (state.podsPerNode > 0) await addPods(ctx.stateDir, state, node, state.podsPerNode);
    await ctx.progress.step(`routes converged on ${state.nodes.length} nodes`, () => waitConverged(state, target.timeoutMs));
    return node;
  });
}

/** A node leaves: its agent stops, it is removed from the datastore (peers drop its routes), its namespaces go. */
export async function removeNode(name: string, target: LabTarget & { timeoutMs?: number } = {}): Promise<void> {
  const ctx = contextOf(target);
  refuseOnDeployLab(ctx.stateDir, "remove-node");
  return withLockedState(ctx.stateDir, async (state) => {
    const node = requireNode(state, name);
    if (state.runtime === "podman") await removePodmanPods(ctx.stateDir, node);
    if (node.agent !== undefined) await stopRecordedProcess(node.agent);
    if (state.datastore === "etcd") await removeNodeFromLabEtcd(underlayNs(state.prefix), node.name);
    else await deregisterNode(ctx.stateDir, node.name);
    const pods = state.pods.filter((pod) => pod.node === node.name);
    const doomed = [node.netns, ...pods.map((pod) => pod.netns)];
    await deleteNamespaces(doomed);
    state.nodes = state.nodes.filter((candidate) => candidate !== node);
    state.pods = state.pods.filter((pod) => pod.node !== node.name);
    state.namespaces = state.namespaces.filter((ns) => !doomed.includes(ns));
    await saveState(ctx.stateDir, state);
    ctx.progress.line(`node ${name} removed (${doomed.length} namespaces)`);
    const gone = async (): Promise<boolean> => {
      for (const peer of state.nodes) {
        if ((await missingRoutes(peer.netns, node.podCidrs)).length !== node.podCidrs.length) return false;
      }
      return true;
    };
    const timeoutMs = target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(await waitFor(gone, { timeoutMs, maxIntervalMs: 100 }))) {
      throw new LabError("ERR_LAB_TIMEOUT", `peers still route to ${name}'s pod CIDRs after ${timeoutMs} ms`);
    }
    ctx.progress.line(`every peer dropped ${name}'s routes`);
  });
}

/** Kills a node's agent with SIGKILL (a crash: nothing is cleaned up), keeping the node in the lab. */
export async function killAgent(name: string, target: LabTarget = {}): Promise<number | undefined> {
  const ctx = contextOf(target);
  refuseOnDeployLab(ctx.stateDir, "kill-agent");
  const state = await requireState(ctx.stateDir);
  const node = requireNode(state, name);
  if (node.agent === undefined || !(await stopRecordedProcess(node.agent, "SIGKILL"))) {
    ctx.progress.line(`agent ${name} was not running`);
    return undefined;
  }
  ctx.progress.line(`agent ${name} (pid ${node.agent.pid}) killed with SIGKILL`);
  return node.agent.pid;
}

/** Starts a node's agent again (after kill-agent) and waits until it is ready. */
export async function startAgent(name: string, target: LabTarget & { resyncInterval?: string; timeoutMs?: number } = {}): Promise<number> {
  const ctx = contextOf(target);
  refuseOnDeployLab(ctx.stateDir, "start-agent");
  return withLockedState(ctx.stateDir, async (state) => {
    const node = requireNode(state, name);
    if (node.agent !== undefined && (await isRecordedProcessAlive(node.agent))) {
      ctx.progress.line(`agent ${name} already running (pid ${node.agent.pid})`);
      return node.agent.pid;
    }
    node.agent = await startAgentProcess(ctx.stateDir, node, target.resyncInterval ?? state.resyncInterval, state.datastore);
    await saveState(ctx.stateDir, state);
    await waitAgentReady(ctx.stateDir, node, target.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    ctx.progress.line(`agent ${name} started (pid ${node.agent.pid}) and ready`);
    return node.agent.pid;
  });
}

/** Starts etcd in the underlay namespace on br0's 172.31.0.1 and writes the network config the agents store in it. */
async function startLabEtcd(stateDir: string, prefix: string, segments: readonly SegmentPlan[], config: LabNetworkConfig): Promise<NonNullable<LabState["etcd"]>> {
  const underlay = underlayNs(prefix);
  const gateway = segments[0]?.gateways[0];
  const others = segments.slice(1).flatMap((segment) => (gateway === undefined ? [] : [{ subnet: segment.subnets[0] ?? "", via: gateway }]));
  await prepareLabEtcdNetwork(underlay, others);
  await mkdir(join(stateDir, "logs"), { recursive: true });
  // The first agent stores it in etcd (create-once); the others find it there.
  await writeFile(join(stateDir, "net-conf.json"), JSON.stringify(config) + "\n");
  const log = join(stateDir, "logs", "etcd.log");
  const { pid, startTime } = await startInNamespace({ netns: underlay, args: labEtcdArgs(join(stateDir, "etcd")), logPath: log });
  if (!(await waitLabEtcdHealthy(underlay))) throw new LabError("ERR_LAB_TIMEOUT", `etcd in ${underlay} not healthy within 20 s; see ${log}`);
  return { pid, startTime, log, endpoint: LAB_ETCD_ENDPOINT };
}
