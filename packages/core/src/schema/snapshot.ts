import { z } from "zod";
import type { ClusterSnapshot, NodeSnapshot } from "../routes/types.ts";
import { cidrString, ipString, nodeName, onePerFamily, vtepMacString } from "./fields.ts";

/**
 * A node as a datastore publishes it: name, underlay IPs and pod CIDRs (one per family), optional VTEP MAC.
 * Validate nodes one at a time, so one bad record does not hide the rest; computeNodeNetwork re-checks overlaps.
 */
export const nodeSnapshotSchema = z
  .object({
    name: nodeName,
    underlayIps: z.array(ipString).min(1, "a node needs an underlay IP").max(2).superRefine((values, ctx) => onePerFamily(values, ctx, "underlay IP")),
    podCidrs: z.array(cidrString).max(2).superRefine((values, ctx) => onePerFamily(values, ctx, "pod CIDR")).default([]),
    vtepMac: vtepMacString.optional(),
    ready: z.boolean().optional(),
  })
  .strict() satisfies z.ZodType<NodeSnapshot, unknown>;

/** A cluster snapshot: the cluster CIDRs and every live node. */
export const clusterSnapshotSchema = z
  .object({
    clusterCidrs: z.array(cidrString).min(1, "at least one cluster CIDR is required"),
    nodes: z.array(nodeSnapshotSchema),
  })
  .strict() satisfies z.ZodType<ClusterSnapshot, unknown>;
