import type { IpFamily } from "../ip/index.ts";

/** How traffic reaches a remote node's pods: direct routes, a VXLAN overlay, or direct where L2-adjacent. */
export type Backend = "host-gw" | "vxlan" | "auto";

/** One node as the datastore publishes it; strings are unvalidated wire values (computeNodeNetwork checks them). */
export interface NodeSnapshot {
  name: string;
  /** At most one per family, e.g. `["172.31.0.11", "fd00::11"]`. */
  underlayIps: string[];
  /** At most one per family, e.g. `["10.244.1.0/24", "fd00:10:244:1::/64"]`; empty until allocated. */
  podCidrs: string[];
  /** The node's published VTEP MAC; when absent, `vtepMacFor(name)`. */
  vtepMac?: string;
  /** Informational: routes stay programmed for a NotReady node (its pods may still be serving). */
  ready?: boolean;
}

/** The cluster as one consistent read: cluster CIDRs (one per family) and every live node. */
export interface ClusterSnapshot {
  clusterCidrs: string[];
  nodes: NodeSnapshot[];
}

/** This node's local facts and the cluster-wide backend parameters that computeNodeNetwork needs. */
export interface NetworkOptions {
  backend: Backend;
  /** VXLAN network identifier, 1..16777215 (default 1). */
  vni: number;
  /** VXLAN UDP destination port (default 8472, the Linux default; 4789 is the IANA port). */
  vxlanPort: number;
  /** The underlay interface host-gw routes leave by and the VXLAN device binds to, e.g. `"eth0"`. */
  underlayDevice: string;
  /** The underlay interface MTU, e.g. 1500. */
  underlayMtu: number;
  /** This node's L2 subnets, e.g. `["172.31.0.0/24"]`; `auto` uses host-gw for peers inside one. */
  underlaySubnets: string[];
  /** The VXLAN device name (default `"flatnet.1"`). */
  vxlanDevice: string;
}

/** A route flatnet owns (`proto 77`, main table); identified in the kernel by family and dst. */
export interface Route {
  family: IpFamily;
  dst: string;
  via: string;
  dev: string;
  onlink: boolean;
}

/** A permanent neighbour (ARP/ND) entry on the VXLAN device; identified by dev and ip. */
export interface Neighbour {
  family: IpFamily;
  ip: string;
  mac: string;
  dev: string;
}

/**
 * A permanent `self` FDB row on the VXLAN device: frames for `mac` go to underlay IP `dst`.
 * A unicast MAC has at most one row per device (the kernel's `replace` overwrites its destination).
 */
export interface FdbEntry {
  mac: string;
  dst: string;
  dev: string;
}

/** The node's single VXLAN device; it carries both inner families over one underlay family. */
export interface VxlanDevice {
  name: string;
  vni: number;
  port: number;
  /** This node's underlay IP (of `underlayFamily`), the outer source address. */
  local: string;
  underlayFamily: IpFamily;
  underlayDevice: string;
  mac: string;
  mtu: number;
  /** This node's VTEP IPs as `/32` and `/128`: the first address of each own pod CIDR. */
  addresses: string[];
}

/** The kernel objects flatnet owns on one node: what is desired, or what was read back. */
export interface KernelState {
  vxlan?: VxlanDevice;
  routes: Route[];
  neighbours: Neighbour[];
  fdb: FdbEntry[];
}

/** A peer (or one family of it) left out of the desired state, and why. */
export interface SkippedPeer {
  node: string;
  /** Set when only this family of the peer was skipped. */
  family?: IpFamily;
  code: string;
  message: string;
}

/** How one peer family is reached. */
export interface PeerPath {
  node: string;
  family: IpFamily;
  podCidr: string;
  mode: "host-gw" | "vxlan";
}

/** This node's desired kernel state, its pod MTU, and the peers left out. */
export interface DesiredNetwork extends KernelState {
  node: string;
  /** The MTU pods on this node get: underlayMtu for host-gw; underlayMtu - 50 (IPv4 underlay) or - 70 (IPv6) otherwise. */
  podMtu: number;
  /** This node's own pod CIDRs, canonical, IPv4 first. */
  podCidrs: string[];
  /** Every programmed peer family and the path chosen for it, sorted by node then family. */
  peers: PeerPath[];
  skipped: SkippedPeer[];
}

/**
 * One kernel change. For the VXLAN device, `update` changes MTU, MAC and addresses in place (`previous` is the
 * device as it was), `replace` deletes and recreates it (VNI, port, local IP and underlay device are immutable in
 * the kernel; recreating drops every neighbour, FDB row and route on it), `delete` removes it with all its objects.
 */
export type PlanStep =
  | { op: "create" | "replace" | "delete"; kind: "vxlan-device"; device: VxlanDevice }
  | { op: "update"; kind: "vxlan-device"; device: VxlanDevice; previous: VxlanDevice }
  | { op: "add" | "replace" | "delete"; kind: "neighbour"; neighbour: Neighbour }
  | { op: "add" | "replace" | "delete"; kind: "fdb"; fdb: FdbEntry }
  | { op: "add" | "replace" | "delete"; kind: "route"; route: Route };

/** An ordered list of kernel changes; empty when the kernel already matches. */
export interface Plan {
  steps: PlanStep[];
}

/** The route protocol number flatnet stamps on its routes (`proto 77`); only such routes are read back and removed. */
export const FLATNET_ROUTE_PROTOCOL = 77;
/** Default VXLAN network identifier. */
export const DEFAULT_VNI = 1;
/** Default VXLAN UDP port (the Linux and flannel default). */
export const DEFAULT_VXLAN_PORT = 8472;
/** Default VXLAN device name. */
export const DEFAULT_VXLAN_DEVICE = "flatnet.1";
/** VXLAN encapsulation overhead per underlay family: outer IP + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD: Readonly<Record<IpFamily, number>> = { IPv4: 50, IPv6: 70 };
