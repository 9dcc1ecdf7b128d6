import type { LabNode, LabPod, LabRuntime } from "@flatnet/core";
import { cniWorkerSocket } from "../cni/delegate.ts";
import { cniAdd, installCni } from "../cni/runtime.ts";
import { agentPaths, fetchAgentNode } from "./agent-process.ts";
import { nodeCniRoot, podImageDir, type PodSlot } from "./names.ts";
import { buildPodImage } from "./pod-image.ts";
import { startPodmanPods } from "./podman.ts";

/**
 * Attaches pod namespaces (already created) to their node as a container runtime would: the flatnet CNI plugin is
 * installed for the node under <stateDir>/cni/<node> (bin/, net.d/ conflist with the agent's pod CIDRs and MTU) and
 * each pod is attached with a CNI ADD (env plus stdin). The plugin's durable IPAM allocates the IPs.
 * With the podman runtime, the pods are containers the node's podman starts through that conflist instead; their
 * namespaces are created by podman, not beforehand.
 */
export async function attachPods(stateDir: string, node: LabNode, pods: readonly PodSlot[], runtime: LabRuntime = "netns"): Promise<LabPod[]> {
  const self = await fetchAgentNode(stateDir, node);
  const install = installCni({ root: nodeCniRoot(stateDir, node.name), nodeNetns: node.netns, podCidrs: self.podCidrs, mtu: self.podMtu, agentSocket: cniWorkerSocket(agentPaths(stateDir, node.name).socket), nativeClient: "if-built" });
  if (runtime === "podman") return startPodmanPods(stateDir, node, install, await buildPodImage(podImageDir(stateDir)), pods);
  return Promise.all(
    pods.map(async (pod) => {
      const containerId = `lab-${pod.netns}`;
      const { addresses } = await cniAdd(install, { containerId, netns: `/run/netns/${pod.netns}`, ifName: "eth0" });
      return { ...pod, containerId, ifName: "eth0", ips: addresses.map((address) => address.slice(0, address.indexOf("/"))) };
    }),
  );
}
