import { join } from "node:path";
import type { NetnsTarget } from "../linux/exec.ts";
import type { AttachedPod, BridgeSpec, BridgeState, PodAttachment, PodInterfaceState, PodLink, PodLinkSpec, PodRef } from "../linux/pod.ts";
import { IpamDamagedError, type IpamStore } from "../ipam-store/store.ts";
import type { CniEnv } from "./env.ts";
import { CniCode, CniError } from "./errors.ts";
import { DEFAULT_MTU, type Netconf, type NodeSubnet, parsePools, parseSubnetFile } from "./netconf.ts";

/** The kernel operations the plugin needs: linux/pod.ts in production, a fake in unit tests. */
export interface PodOps {
  /** Attach, node half: the veth pair, host end on the bridge (ENODEV when the bridge is missing). */
  createLink(spec: PodLinkSpec): Promise<PodLink>;
  /** Attach, pod half: addresses, routes, up. */
  configureLink(spec: PodAttachment, link: PodLink): Promise<AttachedPod>;
  detach(ref: PodRef): Promise<{ removed: boolean }>;
  inspect(target: NetnsTarget, ifName: string): Promise<PodInterfaceState | undefined>;
  ensureBridge(netns: string, spec: BridgeSpec): Promise<BridgeState>;
  hostVethName(containerId: string, ifName: string): string;
  /** Names of flatnet's host veths (fnv*) on `bridge` in the node namespace. */
  listHostVeths(netns: string, bridge: string): Promise<string[]>;
  /** Deletes a host veth by name (GC's sweep of veths no attachment owns). */
  detachLink(netns: string, name: string): Promise<void>;
}

/** Everything the plugin touches outside itself, injected so every command is testable without a kernel. */
export interface PluginDeps {
  pods: PodOps;
  /** File contents, or undefined when the file does not exist. */
  readFile(path: string): string | undefined;
  exists(path: string): boolean;
  openStore(path: string): IpamStore;
  /** Marks the end of a phase: timings on stderr when FLATNET_CNI_TRACE is set (stderr is the runtime's log, never the result). */
  trace(label: string): void;
}

/** One invocation after validation, shared by the command implementations. */
export interface Invocation {
  env: CniEnv;
  netconf: Netconf;
  deps: PluginDeps;
}

/** The node's pod CIDRs and MTU, inline in the netconf or from the agent's subnet file; netconf `mtu` wins. */
export function resolveSubnet(inv: Invocation): NodeSubnet {
  const { netconf, deps } = inv;
  if (netconf.podCidrs !== undefined) return { pools: parsePools(netconf.podCidrs, "podCidrs"), mtu: netconf.mtu ?? DEFAULT_MTU };
  if (netconf.subnetFile === undefined) {
    throw new CniError(CniCode.InvalidNetworkConfig, "network configuration sets neither podCidrs nor subnetFile; set exactly one");
  }
  const file = parseSubnetFile(netconf.subnetFile, deps.readFile(netconf.subnetFile));
  return { pools: parsePools(file.podCidrs, `subnet file ${netconf.subnetFile}: podCidrs`), mtu: netconf.mtu ?? file.mtu };
}

/** The node namespace the plugin acts in (the lab's node, or a name bound to the host's namespace on a real node). */
export function requireNodeNetns(inv: Invocation): string {
  const name = inv.netconf.nodeNetns;
  if (name === undefined) {
    throw new CniError(CniCode.InvalidNetworkConfig, 'network configuration has no nodeNetns; flatnet acts only in a named network namespace (e.g. "ip netns attach host 1" on a node)');
  }
  return name;
}

/** The IPAM database of this network: one file per network name under dataDir. */
export function openStore(inv: Invocation): IpamStore {
  const path = join(inv.netconf.dataDir, inv.netconf.name, "ipam.db");
  try {
    return inv.deps.openStore(path);
  } catch (error) {
    if (error instanceof IpamDamagedError) throw new CniError(CniCode.IoFailure, error.message);
    throw new CniError(CniCode.IoFailure, `cannot open the IPAM database ${JSON.stringify(path)}: ${(error as Error).message}`);
  }
}

/** Runs `fn` with this network's IPAM database open (openStore) and closes it after, however `fn` ends. */
export async function withStore<T>(inv: Invocation, fn: (store: IpamStore) => T | Promise<T>): Promise<T> {
  const store = openStore(inv);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** CNI_NETNS as pod.ts addresses it: a /run/netns name when it is one (no nsenter needed), else the path. */
export function podTarget(netns: string): NetnsTarget {
  const match = /^\/(?:var\/)?run\/netns\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(netns);
  return match?.[1] !== undefined ? { name: match[1] } : { path: netns };
}
