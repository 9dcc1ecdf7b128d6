import { join } from "node:path";
import { cniWorkerSocket } from "../cni/delegate.ts";
import { cniAdd, installCni } from "../cni/runtime.ts";
import { agentPaths, fetchAgentNode } from "./agent-process.ts";
import type { LabNode, LabPod } from "./state.ts";

export interface PodSlot {
  name: string;
  netns: string;
  node: string;
  index: number;
}

export const podContainerId = (netns: string): string => `lab-${netns}`;

/**
 * Attaches pod namespaces (already created) to their node as a container runtime would: the flatnet CNI plugin is
 * installed for the node under <stateDir>/cni/<node> (bin/, net.d/ conflist with the agent's pod CIDRs and MTU) and
 * each pod is attached with a CNI ADD (env plus stdin). The plugin's durable IPAM allocates the IPs.
 */
export async function attachPods(stateDir: string, node: LabNode, _existing: readonly LabPod[], pods: readonly PodSlot[]): Promise<LabPod[]> {
  const self = await fetchAgentNode(stateDir, node);
  const install = installCni({ root: join(stateDir, "cni", node.name), nodeNetns: node.netns, podCidrs: self.podCidrs, mtu: self.podMtu, agentSocket: cniWorkerSocket(agentPaths(stateDir, node.name).socket), nativeClient: "if-built" });
  return Promise.all(
    pods.map(async (pod) => {
      const containerId = podContainerId(pod.netns);
      const { addresses } = await cniAdd(install, { containerId, netns: `/run/netns/${pod.netns}`, ifName: "eth0" });
      return { ...pod, containerId, ifName: "eth0", ips: addresses.map((address) => address.slice(0, address.indexOf("/"))) };
    }),
  );
}
