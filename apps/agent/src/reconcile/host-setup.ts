import { bridgeGateway, type ClusterSnapshot, type DesiredNetwork, isIp } from "@flatnet/core";
import type { HostSetup } from "../linux/kernel.ts";

/**
 * Node-wide setup that follows from the cluster and this node's desired network. Peers' values count only for the
 * peers `computeNodeNetwork` accepted (`desired.peers`): one validation for every consumer, so a node it skipped
 * (say `underlay-ips: "8.8.8.8,1.1.1.1"`) cannot put addresses into every node's masquerade exemptions.
 */
export function hostSetupFor(cluster: ClusterSnapshot, desired: DesiredNetwork, masquerade: boolean): HostSetup {
  const self = cluster.nodes.find((node) => node.name === desired.node);
  const accepted = new Set([desired.node, ...desired.peers.map((peer) => peer.node)]);
  // The first node of a name is the one computeNodeNetwork used; a duplicate was skipped.
  const used = cluster.nodes.filter((node, i) => accepted.has(node?.name) && cluster.nodes.findIndex((n) => n?.name === node.name) === i);
  return {
    clusterCidrs: [...cluster.clusterCidrs],
    bridgeGateways: (self?.podCidrs ?? []).map(bridgeGateway),
    podMtu: desired.podMtu,
    masquerade,
    // Wire values: only valid addresses reach the nft script.
    nodeIps: [...new Set(used.flatMap((node) => node.underlayIps).filter((ip) => isIp(ip)))].sort(),
  };
}
