import { nodeEvidenceSchema, ROUTER_QUERIES, type FirewallRule, type NodeEvidence, type NodeProbeState, type RouteQuery, type StateNeighbour, type StateTables, VXLAN_OVERHEAD } from "@flatnet/core";
import { readFirewall, readKernelState, readLink, readNeighbours, readRouteMtus } from "../linux/index.ts";
import { gatherEvidence } from "../linux/evidence.ts";
import type { NodeStateSource } from "./engine.ts";
import type { IncomingMessage } from "node:http";
import { getOkJson, postJson, readAll, type HttpEndpoint } from "../http/client.ts";

/** What a node contributes to diagnosis beyond its `/v1/state`: firewall, underlay MTU, MAC and next-hop neighbours. */
export interface ProbeNodeFacts {
  firewall: FirewallRule[];
  underlayMtu?: number;
  underlayMac?: string;
  underlayNeighbours: StateNeighbour[];
  routeMtus: { dst: string; mtu: number }[];
  errors: string[];
}

/** Gather this node's probe facts from its namespace (served by the agent at `GET /v1/probe/node-facts`). */
export async function readNodeFacts(netns: string, underlayDevice: string): Promise<ProbeNodeFacts> {
  const errors: string[] = [];
  const [firewall, link, underlayNeighbours, routeMtus] = await Promise.all([
    readFirewall(netns).catch((error: Error) => (errors.push(error.message), [] as FirewallRule[])),
    readLink(netns, underlayDevice).catch((error: Error) => (errors.push(error.message), undefined)),
    readNeighbours(netns, underlayDevice).catch((error: Error) => (errors.push(error.message), [] as StateNeighbour[])),
    readRouteMtus(netns).catch((error: Error) => (errors.push(error.message), [])),
  ]);
  const facts: ProbeNodeFacts = { firewall, underlayNeighbours, routeMtus, errors };
  if (link?.mtu !== undefined) facts.underlayMtu = link.mtu;
  if (link?.mac !== undefined) facts.underlayMac = link.mac;
  return facts;
}

/** Copy node facts into a diagnosis state. */
export function applyNodeFacts(state: NodeProbeState, facts: ProbeNodeFacts): NodeProbeState {
  state.firewall = facts.firewall;
  state.underlayNeighbours = facts.underlayNeighbours;
  if (facts.underlayMtu !== undefined) state.underlayMtu = facts.underlayMtu;
  if (facts.underlayMac !== undefined) state.underlayMac = facts.underlayMac;
  for (const route of state.actual?.routes ?? []) {
    const mtu = facts.routeMtus.find((m) => m.dst === route.dst)?.mtu;
    if (mtu !== undefined) route.mtu = mtu;
  }
  return state;
}

export interface KernelNode {
  netns: string;
  podCidrs: string[];
  nodeIps: string[];
  podMtu?: number;
  underlayDevice?: string;
  encapOverhead?: number;
  /** What the node should have; without it only missing routes (not wrong ones) can be named. */
  desired?: StateTables;
}

/**
 * A namespace on the path that is not a node (the lab's underlay bridge, with the node each port leads to; its
 * router; a pod's own namespace, named by `podQueriesKey`).
 */
export interface EvidencePlace {
  name: string;
  netns: string;
  role: "underlay" | "router" | "pod";
  portNodes?: ReadonlyMap<string, string>;
  /** A pod's name, which its evidence carries (`name` is its key). */
  pod?: string;
}

/**
 * Diagnosis state read straight from the nodes' namespaces (flatnet's `proto 77` routes, VTEP neighbours and
 * FDB, underlay MTU, nftables), and the tracer's evidence of the nodes and of `places`: for tests and the lab.
 */
export function kernelStateSource(nodes: ReadonlyMap<string, KernelNode>, places: readonly EvidencePlace[] = []): NodeStateSource {
  return {
    async evidence(queries) {
      const out = new Map<string, NodeEvidence>();
      await Promise.all([
        ...[...queries].map(async ([name, lookups]) => {
          const node = nodes.get(name);
          if (node !== undefined) out.set(name, await gatherEvidence(node.netns, lookups, { node: name }));
        }),
        ...places.map(async (place) => {
          if (place.role === "pod") {
            // Only the pods of the pairs being explained: a pod is asked something exactly when a pair has it as an end.
            const asked = queries.get(place.name);
            if (asked !== undefined) out.set(place.name, { ...(await gatherEvidence(place.netns, asked, { node: place.pod ?? place.name, role: "pod" })), netns: place.netns });
            return;
          }
          const options = { node: place.name, role: place.role, ...(place.portNodes === undefined ? {} : { portNodes: place.portNodes }) };
          out.set(place.name, await gatherEvidence(place.netns, place.role === "router" ? (queries.get(ROUTER_QUERIES) ?? []) : [], options));
        }),
      ]);
      return out;
    },
    read: (names) =>
      readEachNode(names, async (name): Promise<NodeProbeState> => {
        const node = nodes.get(name);
        if (node === undefined) return { node: name, reachable: false, error: "unknown node", podCidrs: [], nodeIps: [] };
        try {
          const [actual, facts] = await Promise.all([readKernelState(node.netns), readNodeFacts(node.netns, node.underlayDevice ?? "eth0")]);
          const state: NodeProbeState = {
            node: name,
            reachable: true,
            podCidrs: node.podCidrs,
            nodeIps: node.nodeIps,
            actual: { routes: actual.routes, neighbours: actual.neighbours, fdb: actual.fdb },
          };
          applyNodeFacts(state, facts);
          if (actual.vxlan !== undefined) state.vtepMac = actual.vxlan.mac;
          if (node.desired !== undefined) state.desired = node.desired;
          if (node.podMtu !== undefined) state.podMtu = node.podMtu;
          if (node.encapOverhead !== undefined) state.encapOverhead = node.encapOverhead;
          return state;
        } catch (error) {
          return { node: name, reachable: false, error: (error as Error).message, podCidrs: node.podCidrs, nodeIps: node.nodeIps };
        }
      }),
  };
}

/**
 * Diagnosis state from the agents' APIs: `GET /v1/state` (desired and actual kernel state, node identity)
 * and `GET /v1/probe/node-facts` (firewall, underlay MTU). An agent that does not answer is `reachable: false`.
 */
export function agentStateSource(locateAgent: (node: string) => HttpEndpoint | undefined, timeoutMs = 3_000): NodeStateSource {
  return {
    evidence: (queries) => agentEvidence(locateAgent, queries, timeoutMs),
    read: (names) =>
      readEachNode(names, async (name): Promise<NodeProbeState> => {
        const endpoint = locateAgent(name);
        if (endpoint === undefined) return { node: name, reachable: false, error: "no agent endpoint known", podCidrs: [], nodeIps: [] };
        try {
          const [state, facts] = await Promise.all([
            getOkJson(endpoint, "/v1/state", timeoutMs),
            getOkJson(endpoint, "/v1/probe/node-facts", timeoutMs).catch(() => undefined),
          ]);
          return fromAgentState(name, state, facts as ProbeNodeFacts | undefined);
        } catch (error) {
          return { node: name, reachable: false, error: (error as Error).message, podCidrs: [], nodeIps: [] };
        }
      }),
  };
}

/**
 * Map an agent's `/v1/state` body to diagnosis state. Tolerant by design: it reads the fields it knows
 * (`desired`, `actual`, `node`/`self` identity, `podMtu`) wherever the agent puts them and ignores the rest.
 */
export function fromAgentState(name: string, body: unknown, facts?: ProbeNodeFacts): NodeProbeState {
  const b = (body ?? {}) as Record<string, unknown>;
  const self = (b.node ?? b.self ?? {}) as Record<string, unknown>;
  const desired = (b.desired ?? {}) as Record<string, unknown>;
  const tables = (t: unknown): StateTables | undefined => {
    const x = t as Partial<StateTables> | undefined;
    if (x === undefined || x === null || typeof x !== "object") return undefined;
    return { routes: Array.isArray(x.routes) ? x.routes : [], neighbours: Array.isArray(x.neighbours) ? x.neighbours : [], fdb: Array.isArray(x.fdb) ? x.fdb : [] };
  };
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : []);
  const state: NodeProbeState = {
    node: name,
    reachable: true,
    podCidrs: strings(self.podCidrs ?? b.podCidrs),
    nodeIps: strings(self.underlayIps ?? b.underlayIps),
  };
  const d = tables(b.desired);
  const a = tables(b.actual);
  if (d !== undefined) state.desired = d;
  if (a !== undefined) state.actual = a;
  const podMtu = desired.podMtu ?? self.podMtu ?? b.podMtu;
  if (typeof podMtu === "number") state.podMtu = podMtu;
  const vxlan = (desired.vxlan ?? undefined) as { underlayFamily?: string } | undefined;
  const peersOverVxlan = (d?.routes ?? []).some((r) => r.dev !== undefined && r.dev === (desired.vxlan as { name?: string } | undefined)?.name);
  state.encapOverhead = peersOverVxlan ? VXLAN_OVERHEAD[vxlan?.underlayFamily === "IPv6" ? "IPv6" : "IPv4"] : 0;
  if (facts !== undefined) applyNodeFacts(state, { ...facts, underlayNeighbours: facts.underlayNeighbours ?? [], routeMtus: facts.routeMtus ?? [] });
  return state;
}

/** Each node's evidence from its agent (`POST /v1/evidence`); a node whose agent does not answer is left out. */
export function agentEvidence(
  locateAgent: (node: string) => HttpEndpoint | undefined,
  queries: ReadonlyMap<string, RouteQuery[]>,
  timeoutMs = 5_000,
): Promise<Map<string, NodeEvidence>> {
  return readEachNode(queries.keys(), async (node) => {
    // The router's and pods' questions are no node's: keys that are no node name start with `*`.
    const endpoint = node.startsWith("*") ? undefined : locateAgent(node);
    // An agent that cannot answer is named by diagnosis (agent-unreachable); its hops stay "unknown".
    return endpoint === undefined ? undefined : answeredEvidence(() => postJson(endpoint, "/v1/evidence", { lookups: queries.get(node) }, timeoutMs));
  });
}

/** The evidence in the answer to an evidence request; undefined when the request fails or the answer is not evidence. */
export async function answeredEvidence(send: () => Promise<IncomingMessage>): Promise<NodeEvidence | undefined> {
  try {
    const response = await send();
    const text = await readAll(response);
    const parsed = nodeEvidenceSchema.safeParse(response.statusCode === 200 ? JSON.parse(text) : undefined);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** `read` for every node at once, into a map in completion order; a node read as undefined is left out. */
export async function readEachNode<T>(nodes: Iterable<string>, read: (node: string) => Promise<T | undefined>): Promise<Map<string, T>> {
  const out = new Map<string, T>();
  await Promise.all(
    [...nodes].map(async (node) => {
      const value = await read(node);
      if (value !== undefined) out.set(node, value);
    }),
  );
  return out;
}
