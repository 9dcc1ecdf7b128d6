import { NodeIpam } from "@flatnet/core";
import { attachPod, ensureBridge } from "../linux/pod.ts";
import { fetchAgentNode } from "./agent-process.ts";
import { LabError } from "./errors.ts";
import type { LabNode, LabPod } from "./state.ts";

export interface PodSlot {
  name: string;
  netns: string;
  node: string;
  index: number;
}

export const podContainerId = (netns: string): string => `lab-${netns}`;

/**
 * Allocates pod IPs from the node's pod CIDRs with the core node IPAM (host-local semantics); the lab state's pods
 * are its journal, so the IPAM is rebuilt from them.
 */
export function allocatePodIps(node: LabNode, existing: readonly LabPod[], pods: readonly PodSlot[]): NodeIpam {
  const created = NodeIpam.create({ podCidrs: node.podCidrs });
  if (!created.success) throw new LabError(created.error.code, created.error.message);
  const ipam = created.data;
  for (const pod of existing) {
    const reserved = ipam.reserve({ containerId: pod.containerId, ifName: pod.ifName, ips: pod.ips });
    if (!reserved.success) throw new LabError(reserved.error.code, reserved.error.message);
  }
  for (const pod of pods) {
    const allocated = ipam.allocate({ containerId: podContainerId(pod.netns), ifName: "eth0" });
    if (!allocated.success) throw new LabError(allocated.error.code, allocated.error.message);
  }
  return ipam;
}

/**
 * Attaches pod namespaces (already created) to their node: the node bridge with the gateways and the agent's pod
 * MTU, then a veth per pod. Until the CNI plugin lands, the lab allocates the IPs itself and records them in its state.
 */
export async function attachPods(stateDir: string, node: LabNode, existing: readonly LabPod[], pods: readonly PodSlot[]): Promise<LabPod[]> {
  const self = await fetchAgentNode(stateDir, node);
  const ipam = allocatePodIps(node, existing, pods);
  const first = ipam.get({ containerId: podContainerId(pods[0]?.netns ?? ""), ifName: "eth0" });
  if (first !== undefined) {
    await ensureBridge(node.netns, { gateways: first.ips.map((ip) => `${ip.gateway}/${ip.prefix}`), mtu: self.podMtu });
  }
  return Promise.all(
    pods.map(async (pod) => {
      const containerId = podContainerId(pod.netns);
      const allocation = ipam.get({ containerId, ifName: "eth0" });
      if (allocation === undefined) throw new Error(`invariant: ${containerId} was allocated`);
      await attachPod({
        nodeNetns: node.netns,
        podNetns: { name: pod.netns },
        containerId,
        ifName: "eth0",
        addresses: allocation.ips.map((ip) => `${ip.address}/${ip.prefix}`),
        gateways: allocation.ips.map((ip) => ip.gateway),
        mtu: self.podMtu,
      });
      return { ...pod, containerId, ifName: "eth0", ips: allocation.ips.map((ip) => ip.address) };
    }),
  );
}
