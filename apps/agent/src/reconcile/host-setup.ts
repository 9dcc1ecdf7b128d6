import { type ClusterSnapshot, type DesiredNetwork, formatIp, isIp, nthAddress, parseCidr } from "@flatnet/core";
import type { HostSetup } from "../linux/kernel.ts";

/** The pod bridge's gateway per own pod CIDR: its first usable address with the CIDR's prefix ("10.244.1.1/24"). */
export function bridgeGateways(podCidrs: readonly string[]): string[] {
  return podCidrs.map((text) => {
    const cidr = parseCidr(text);
    return `${formatIp(nthAddress(cidr, 1))}/${cidr.prefix}`;
  });
}

/** Node-wide setup that follows from the cluster and this node's desired network. */
export function hostSetupFor(cluster: ClusterSnapshot, desired: DesiredNetwork, masquerade: boolean): HostSetup {
  const self = cluster.nodes.find((node) => node.name === desired.node);
  return {
    clusterCidrs: [...cluster.clusterCidrs],
    bridgeGateways: bridgeGateways(self?.podCidrs ?? []),
    podMtu: desired.podMtu,
    masquerade,
    // Wire values: only valid addresses reach the nft script.
    nodeIps: [...new Set(cluster.nodes.flatMap((node) => node.underlayIps).filter((ip) => isIp(ip)))].sort(),
  };
}
