import {
  ClusterIpam,
  type ClusterDescription,
  type ClusterSnapshot,
  computeNodeNetwork,
  coreError,
  diffNetwork,
  type DesiredNetwork,
  err,
  ok,
  type RenderedBatch,
  renderPlan,
  type Result,
} from "@flatnet/core";

/** What one node would program: its pod CIDRs, desired kernel state and the iproute2 batches from a clean kernel. */
export interface NodePlan {
  name: string;
  podCidrs: string[];
  /** The pod CIDRs the cluster IPAM allocated now (the rest were given in the description). */
  allocatedPodCidrs: string[];
  desired: DesiredNetwork;
  batches: RenderedBatch[];
}

/**
 * Allocates every node's pod CIDRs with the core's cluster IPAM (given CIDRs are occupied first, then the missing
 * families allocated in file order) and computes what each node (or just `only`) would program on a clean kernel.
 */
export function planCluster(cluster: ClusterDescription, only?: string): Result<NodePlan[]> {
  if (only !== undefined && !cluster.nodes.some((node) => node.name === only)) {
    return err(coreError("ERR_NOT_FOUND", `node "${only}" is not in the cluster description (nodes: ${cluster.nodes.map((node) => node.name).join(", ")})`));
  }
  const created = ClusterIpam.create({ clusterCidrs: cluster.clusterCidrs, nodeMaskIPv4: cluster.nodeMaskIPv4, nodeMaskIPv6: cluster.nodeMaskIPv6 });
  if (!created.success) return created;
  const ipam = created.data;
  for (const node of cluster.nodes) {
    if (node.podCidrs === undefined || node.podCidrs.length === 0) continue;
    const occupied = ipam.occupy(node.name, node.podCidrs);
    if (!occupied.success) return occupied;
  }
  const allocated = new Map<string, string[]>();
  for (const node of cluster.nodes) {
    const change = ipam.allocate(node.name);
    if (!change.success) return change;
    allocated.set(node.name, change.data.event?.podCidrs ?? []);
  }

  const snapshot: ClusterSnapshot = {
    clusterCidrs: cluster.clusterCidrs,
    nodes: cluster.nodes.map((node) => {
      const entry = { name: node.name, underlayIps: node.underlayIps.map((address) => address.ip), podCidrs: ipam.podCidrsOf(node.name) ?? [] };
      return node.vtepMac === undefined ? entry : { ...entry, vtepMac: node.vtepMac };
    }),
  };

  const plans: NodePlan[] = [];
  for (const node of cluster.nodes) {
    if (only !== undefined && node.name !== only) continue;
    const desired = computeNodeNetwork(snapshot, node.name, {
      backend: cluster.backend,
      vni: cluster.vni,
      vxlanPort: cluster.vxlanPort,
      underlayDevice: node.underlayDevice ?? cluster.underlayDevice,
      underlayMtu: node.mtu ?? cluster.mtu,
      underlaySubnets: node.underlayIps.flatMap((address) => (address.subnet === undefined ? [] : [address.subnet])),
      vxlanDevice: cluster.vxlanDevice,
    });
    if (!desired.success) return err(coreError(desired.error.code, `node "${node.name}": ${desired.error.message}`, desired.error.details, desired.error));
    const plan = diffNetwork(desired.data, { routes: [], neighbours: [], fdb: [] });
    plans.push({ name: node.name, podCidrs: desired.data.podCidrs, allocatedPodCidrs: allocated.get(node.name) ?? [], desired: desired.data, batches: renderPlan(plan) });
  }
  return ok(plans);
}

/** Human output: per node its pod CIDRs, MTU, peer paths, skipped peers, then the exact commands in order. */
export function formatPlanText(cluster: ClusterDescription, plans: readonly NodePlan[]): string {
  const out: string[] = [];
  out.push(`# flatnet plan: backend ${cluster.backend}, cluster CIDRs ${cluster.clusterCidrs.join(", ")}, VNI ${cluster.vni}, VXLAN port ${cluster.vxlanPort}`);
  for (const plan of plans) {
    const { desired } = plan;
    const cidrs = plan.podCidrs.map((cidr) => (plan.allocatedPodCidrs.includes(cidr) ? `${cidr} (allocated)` : cidr));
    out.push("", `## node ${plan.name}`, `pod CIDRs: ${cidrs.join(", ")}`, `pod MTU:   ${desired.podMtu}`);
    for (const peer of desired.peers) out.push(`peer:      ${peer.node} ${peer.family} ${peer.podCidr} via ${peer.mode}`);
    for (const skipped of desired.skipped) out.push(`skipped:   ${skipped.node}${skipped.family ? ` ${skipped.family}` : ""}: ${skipped.code}: ${skipped.message}`);
    out.push(`# commands, in order (run inside the node's network namespace: ip -n <netns> -batch - / bridge -n <netns> -batch -):`);
    for (const batch of plan.batches) for (const line of batch.lines) out.push(`${batch.tool} ${line}`);
  }
  return `${out.join("\n")}\n`;
}

/** The plan as one document: the cluster's parameters (without its node list) and every node's plan. */
export function planDocument(cluster: ClusterDescription, plans: readonly NodePlan[]): { cluster: Omit<ClusterDescription, "nodes">; nodes: readonly NodePlan[] } {
  const { nodes: _nodes, ...config } = cluster;
  return { cluster: config, nodes: plans };
}
