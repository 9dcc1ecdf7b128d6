import { cidrFirstHost, cidrNetworkAddress, probeAddressFamily, unmapAddress } from "./address.ts";
import { DEFAULT_PROBE_PORT, nodeEndpointName, type ExcludedTarget, type ProbeEndpoint, type ProbePair, type ProbePlan } from "./types.ts";

type Family = "IPv4" | "IPv6";

/** What the planner knows about the cluster: nodes, pods running a responder, and their readiness. */
export interface ProbeInventory {
  cluster: { name: string; source: "lab" | "kubernetes" | "fixture" };
  nodes: InventoryNode[];
  pods: InventoryPod[];
}

export interface InventoryNode {
  name: string;
  /** Ready and schedulable; false excludes every pod on it. Default true. */
  ready?: boolean;
  podCidrs: string[];
  /** The node's own addresses (underlay / InternalIP). */
  nodeIps: string[];
  /**
   * The node's other own addresses its packets may leave from (pod bridge gateway, VTEP address). Default, per
   * pod CIDR: its first host address (flatnet's bridge gateway) and its network address (flatnet's VTEP).
   */
  hostIps?: string[];
  /** Port of the node's own responder (in its agent, on the node IPs); default DEFAULT_PROBE_PORT. */
  probePort?: number;
}

export interface InventoryPod {
  name: string;
  namespace?: string;
  node: string;
  ips: string[];
  /** Running and Ready with a responder listening. Default true. */
  ready?: boolean;
  /** The responder's port; default DEFAULT_PROBE_PORT. */
  port?: number;
}

export interface PlanRequest {
  mode: "all-pods" | "node-pairs";
  /** Families to probe; default: every family some pod has. */
  families?: Family[];
  /** node-pairs mode: how many peers probe each node (and each node probes); default 10. */
  peersPerNode?: number;
  /**
   * Also probe the nodes themselves (their agent's responder on the node IPs): each node to every pod on other
   * nodes (`node-pod`), and every pod to every other node (`pod-node`). In node-pairs mode, each node's endpoint
   * pairs with the same peers as its representative pod. Default false.
   */
  includeNodes?: boolean;
}

/** Stable pair id: `srcPod>dstPod/IPv4` (namespaces included when set). */
export function pairId(src: { pod: string; namespace?: string }, dst: { pod: string; namespace?: string }, family: Family): string {
  const name = (e: { pod: string; namespace?: string }): string => (e.namespace ? `${e.namespace}/${e.pod}` : e.pod);
  return `${name(src)}>${name(dst)}/${family}`;
}

/**
 * The pairs to probe: every ordered pod pair per family (`all-pods`), or, for large clusters, one responder
 * per node where every node probes and is probed by the same number of peers, plus one same-node pair per
 * node (`node-pairs`). Pairs touching a pod or node that is not Ready are kept with `excluded` set.
 * @example buildProbePlan(inventory, { mode: "all-pods" }).pairs.length === pods * (pods - 1) * families
 */
export function buildProbePlan(inventory: ProbeInventory, request: PlanRequest): ProbePlan {
  const nodes = [...inventory.nodes].sort((a, b) => compare(a.name, b.name));
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  const excluded: ExcludedTarget[] = [];
  for (const node of nodes) {
    if (node.ready === false) excluded.push({ kind: "node", name: node.name, reason: `node ${node.name} is not Ready` });
  }
  const pods = [...inventory.pods].sort((a, b) => compare(a.node, b.node) || compare(podKey(a), podKey(b)));
  const exclusionOf = new Map<InventoryPod, string>();
  for (const pod of pods) {
    const node = nodeByName.get(pod.node);
    const reason =
      node === undefined
        ? `pod ${podKey(pod)} is on unknown node ${pod.node}`
        : node.ready === false
          ? `node ${pod.node} is not Ready`
          : pod.ready === false
            ? `pod ${podKey(pod)} is not Ready`
            : undefined;
    if (reason !== undefined) {
      exclusionOf.set(pod, reason);
      if (node?.ready !== false) excluded.push({ kind: "pod", name: podKey(pod), node: pod.node, reason });
    }
  }
  const families =
    request.families ??
    (["IPv4", "IPv6"] as const).filter((f) => pods.some((p) => p.ips.some((ip) => probeAddressFamily(ip) === f)));

  const pairs: ProbePair[] = [];
  const add = (src: InventoryPod, dst: InventoryPod, family: Family): void => {
    const srcIp = src.ips.find((ip) => probeAddressFamily(ip) === family);
    const dstIp = dst.ips.find((ip) => probeAddressFamily(ip) === family);
    if (srcIp === undefined || dstIp === undefined) return;
    const pair: ProbePair = {
      id: pairId(endpointName(src), endpointName(dst), family),
      src: endpoint(src, srcIp),
      dst: endpoint(dst, dstIp),
      family,
      path: src.node === dst.node ? "same-node" : "cross-node",
    };
    const reason = exclusionOf.get(src) ?? exclusionOf.get(dst);
    if (reason !== undefined) pair.excluded = reason;
    pairs.push(pair);
  };

  // Node endpoints: a node's own traffic to remote pods, and pods to remote nodes; never the node's own pods.
  const nodeExclusion = (node: InventoryNode): string | undefined => (node.ready === false ? `node ${node.name} is not Ready` : undefined);
  const addNodePair = (node: InventoryNode, pod: InventoryPod, family: Family, direction: "node-pod" | "pod-node"): void => {
    const nodeEnd = nodeEndpoint(node, family);
    const podIp = pod.ips.find((ip) => probeAddressFamily(ip) === family);
    if (nodeEnd === undefined || podIp === undefined || pod.node === node.name) return;
    const podEnd = endpoint(pod, podIp);
    const [src, dst] = direction === "node-pod" ? [nodeEnd, podEnd] : [podEnd, nodeEnd];
    const pair: ProbePair = { id: pairId(src, dst, family), src, dst, family, path: "cross-node", kind: direction };
    const reason = nodeExclusion(node) ?? exclusionOf.get(pod);
    if (reason !== undefined) pair.excluded = reason;
    pairs.push(pair);
  };

  if (request.mode === "all-pods") {
    for (const family of families) {
      for (const src of pods) for (const dst of pods) if (src !== dst) add(src, dst, family);
    }
    if (request.includeNodes === true) {
      for (const family of families) {
        for (const node of nodes) for (const pod of pods) addNodePair(node, pod, family, "node-pod");
        for (const pod of pods) for (const node of nodes) addNodePair(node, pod, family, "pod-node");
      }
    }
    return { mode: "all-pods", families: [...families], pairs, excluded };
  }

  // node-pairs: a circulant graph over the sorted nodes: node i probes nodes i+1..i+k, so every node has
  // exactly k inbound and k outbound peers (Goldpinger #97 is what happens otherwise).
  const representatives = new Map<string, InventoryPod[]>();
  for (const pod of pods) {
    const list = representatives.get(pod.node) ?? [];
    list.push(pod);
    representatives.set(pod.node, list);
  }
  // Prefer Ready pods as a node's responder so one bad pod does not exclude its whole node.
  const pick = (node: string, index: number): InventoryPod | undefined => {
    const list = representatives.get(node) ?? [];
    const ready = list.filter((p) => !exclusionOf.has(p));
    return (ready.length > 0 ? ready : list)[index];
  };
  const withPods = nodes.filter((n) => (representatives.get(n.name) ?? []).length > 0);
  const peers = Math.max(0, Math.min(request.peersPerNode ?? 10, withPods.length - 1));
  for (const family of families) {
    withPods.forEach((node, i) => {
      const src = pick(node.name, 0);
      if (src === undefined) return;
      for (let step = 1; step <= peers; step++) {
        const dst = pick((withPods[(i + step) % withPods.length] as InventoryNode).name, 0);
        if (dst !== undefined) add(src, dst, family);
      }
      const second = pick(node.name, 1);
      if (second !== undefined) add(src, second, family);
    });
    if (request.includeNodes === true) {
      withPods.forEach((node, i) => {
        for (let step = 1; step <= peers; step++) {
          const peer = withPods[(i + step) % withPods.length] as InventoryNode;
          const peerPod = pick(peer.name, 0);
          const ownPod = pick(node.name, 0);
          if (peerPod !== undefined) addNodePair(node, peerPod, family, "node-pod");
          if (ownPod !== undefined) addNodePair(peer, ownPod, family, "pod-node");
        }
      });
    }
  }
  return { mode: "node-pairs", families: [...families], pairs, excluded, peersPerNode: peers };
}

/**
 * A node's own endpoint in one family: probed at its first node IP of that family; as a sender, accepted from
 * any of its `sourceIps` (node IPs, then `hostIps` or its pod CIDRs' gateway and VTEP addresses, in that family).
 */
export function nodeEndpoint(node: InventoryNode, family: Family): ProbeEndpoint | undefined {
  const ip = node.nodeIps.find((a) => probeAddressFamily(a) === family);
  if (ip === undefined) return undefined;
  const host = node.hostIps ?? node.podCidrs.flatMap((c) => [cidrFirstHost(c), cidrNetworkAddress(c)]).filter((a): a is string => a !== undefined);
  const sourceIps = [...new Set([...node.nodeIps, ...host].filter((a) => probeAddressFamily(a) === family).map(unmapAddress))];
  return { pod: nodeEndpointName(node.name), node: node.name, ip, port: node.probePort ?? DEFAULT_PROBE_PORT, kind: "node", sourceIps };
}

function endpointName(pod: InventoryPod): { pod: string; namespace?: string } {
  return pod.namespace === undefined ? { pod: pod.name } : { pod: pod.name, namespace: pod.namespace };
}

function endpoint(pod: InventoryPod, ip: string): ProbeEndpoint {
  const e: ProbeEndpoint = { pod: pod.name, node: pod.node, ip, port: pod.port ?? DEFAULT_PROBE_PORT };
  if (pod.namespace !== undefined) e.namespace = pod.namespace;
  return e;
}

function podKey(pod: InventoryPod): string {
  return pod.namespace ? `${pod.namespace}/${pod.name}` : pod.name;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
