import { canonicalCidr, canonicalIp, type LabBackend } from "@flatnet/core";

/** The cluster CIDRs of every lab: 10.244.0.0/16 with /24 per node, and for dual-stack fd00:10:244::/56 with /64 per node. */
export const CLUSTER_CIDR_V4 = "10.244.0.0/16";
export const CLUSTER_CIDR_V6 = "fd00:10:244::/56";
export const MAX_NODES = 200;

export interface SegmentPlan {
  index: number;
  bridge: string;
  subnets: string[];
  /** The router's address on this segment per family (auto backend only). */
  gateways: string[];
}

export function clusterCidrs(dualStack: boolean): string[] {
  return dualStack ? [CLUSTER_CIDR_V4, CLUSTER_CIDR_V6] : [CLUSTER_CIDR_V4];
}

/** L2 segments: one bridge for host-gw and vxlan; two bridges joined by a router for auto. */
export function planSegments(backend: LabBackend, dualStack: boolean): SegmentPlan[] {
  const count = backend === "auto" ? 2 : 1;
  return Array.from({ length: count }, (_, index) => ({
    index,
    bridge: `br${index}`,
    subnets: dualStack ? [`172.31.${index}.0/24`, canonicalCidr(`fd00:172:31:${index}::/64`)] : [`172.31.${index}.0/24`],
    gateways: count === 1 ? [] : dualStack ? [`172.31.${index}.254`, canonicalIp(`fd00:172:31:${index}::254`)] : [`172.31.${index}.254`],
  }));
}

/** auto alternates nodes between the two segments, so a 3-node lab has a same-segment pair and cross-segment pairs. */
export function segmentOf(backend: LabBackend, nodeIndex: number): number {
  return backend === "auto" ? (nodeIndex - 1) % 2 : 0;
}

/** Node K's underlay addresses: 172.31.S.(10+K) and fd00:172:31:S::(10+K), written with the same digits. */
export function underlayIpsOf(segment: number, nodeIndex: number, dualStack: boolean): string[] {
  const host = 10 + nodeIndex;
  return dualStack ? [`172.31.${segment}.${host}`, canonicalIp(`fd00:172:31:${segment}::${host}`)] : [`172.31.${segment}.${host}`];
}
