import { DEFAULT_VXLAN_DEVICE, type KernelState, type Plan, POD_BRIDGE } from "@flatnet/core";
import { type ApplyResult, applyKernelPlan } from "./apply.ts";
import { NetnsBatchSessions } from "./batch-session.ts";
import { ensureMasquerade } from "./masquerade.ts";
import { ensureBridge } from "./pod.ts";
import { readKernelState } from "./read.ts";
import { enableForwarding } from "./sysctl.ts";

/** Node-wide setup that is not per peer: forwarding, masquerade for off-cluster traffic, the pod bridge. */
export interface HostSetup {
  clusterCidrs: string[];
  /** Gateway addresses for the pod bridge, with their pod CIDR's prefix ("10.244.1.1/24"). */
  bridgeGateways: string[];
  podMtu: number;
  /** Off by default nowhere: flatnet masquerades off-cluster egress unless told not to. */
  masquerade: boolean;
  /** Every cluster node's underlay IPs: pod -> node traffic is not masqueraded (a node sees the pod's IP). */
  nodeIps?: string[];
}

/** What the reconcile loop drives: read what flatnet owns, apply a plan, keep node-wide setup in place. */
export interface Kernel {
  read(): Promise<KernelState>;
  apply(plan: Plan): Promise<ApplyResult | void>;
  ensureHost?(setup: HostSetup): Promise<void>;
  /** Ends what the kernel adapter keeps running (its batch sessions); a later call starts them again. */
  close?(): Promise<void>;
}

export interface LinuxKernelOptions {
  vxlanDevice?: string;
  bridge?: string;
  /**
   * Apply through long-lived `ip`/`bridge -batch` children (default true): one peer's change costs a pipe write, not
   * a process start. false: one process per batch.
   */
  batchSessions?: boolean;
}

/** The Kernel of one network namespace, through iproute2 and nft. */
export function createLinuxKernel(netns: string, options: LinuxKernelOptions = {}): Kernel {
  const vxlanDevice = options.vxlanDevice ?? DEFAULT_VXLAN_DEVICE;
  const sessions = options.batchSessions === false ? undefined : new NetnsBatchSessions(netns);
  return {
    read: () => readKernelState(netns, { vxlanDevice }),
    apply: (plan) => applyKernelPlan(netns, plan, sessions?.run),
    async ensureHost(setup) {
      await enableForwarding(netns);
      await Promise.all([
        setup.masquerade && setup.clusterCidrs.length > 0 ? ensureMasquerade(netns, setup.clusterCidrs, setup.nodeIps ?? []) : Promise.resolve(),
        setup.bridgeGateways.length > 0
          ? ensureBridge(netns, { name: options.bridge ?? POD_BRIDGE, gateways: setup.bridgeGateways, mtu: setup.podMtu })
          : Promise.resolve(),
      ]);
    },
    close: async () => sessions?.close(),
  };
}
