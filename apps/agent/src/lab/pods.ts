import { formatIp, nthAddress, parseCidr } from "@flatnet/core";
import { attachPod, ensureBridge } from "../linux/pod.ts";
import { fetchAgentNode } from "./agent-process.ts";
import type { LabNode, LabPod } from "./state.ts";

export interface PodSlot {
  name: string;
  netns: string;
  node: string;
  index: number;
}

/** The pod's IP per family: the gateway is the pod CIDR's first usable address (.1), pod i gets the (i+1)-th. */
export function podAddresses(podCidrs: readonly string[], index: number): { addresses: string[]; ips: string[]; gateways: string[] } {
  const cidrs = podCidrs.map((text) => parseCidr(text));
  return {
    ips: cidrs.map((cidr) => formatIp(nthAddress(cidr, index + 1))),
    addresses: cidrs.map((cidr) => `${formatIp(nthAddress(cidr, index + 1))}/${cidr.prefix}`),
    gateways: cidrs.map((cidr) => formatIp(nthAddress(cidr, 1))),
  };
}

/**
 * Attaches pod namespaces (already created) to their node: the node bridge with the gateways and the agent's pod
 * MTU, then a veth per pod. Until the CNI plugin lands, the lab allocates the IPs itself and records them in its state.
 */
export async function attachPods(stateDir: string, node: LabNode, pods: readonly PodSlot[]): Promise<LabPod[]> {
  const self = await fetchAgentNode(stateDir, node);
  const gateways = podAddresses(node.podCidrs, 1).gateways;
  const prefixes = node.podCidrs.map((cidr) => cidr.slice(cidr.indexOf("/")));
  await ensureBridge(node.netns, { gateways: gateways.map((gateway, i) => `${gateway}${prefixes[i]}`), mtu: self.podMtu });
  return Promise.all(
    pods.map(async (pod) => {
      const { addresses, ips } = podAddresses(node.podCidrs, pod.index);
      const containerId = `lab-${pod.netns}`;
      await attachPod({ nodeNetns: node.netns, podNetns: { name: pod.netns }, containerId, ifName: "eth0", addresses, gateways, mtu: self.podMtu });
      return { ...pod, containerId, ifName: "eth0", ips };
    }),
  );
}
