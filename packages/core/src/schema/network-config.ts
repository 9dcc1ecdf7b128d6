import { z } from "zod";
import { DEFAULT_VNI, DEFAULT_VXLAN_PORT } from "../routes/types.ts";
import { cidrString, onePerFamily } from "./fields.ts";

/** The backends flatnet routes with. */
export const backendSchema = z.enum(["host-gw", "vxlan", "auto"], { error: 'backend must be one of "host-gw", "vxlan", "auto"' });

/** The network config fields, shared by `networkConfigSchema` and the cluster description. */
export const networkConfigShape = {
  clusterCidrs: z
    .array(cidrString)
    .min(1, "at least one cluster CIDR is required")
    .max(2, "at most two cluster CIDRs (one per family)")
    .superRefine((values, ctx) => onePerFamily(values, ctx, "cluster CIDR")),
  backend: backendSchema.default("vxlan"),
  nodeMaskIPv4: z.number().int("must be an integer").min(0, "must be 0-30").max(30, "must be 0-30 (a pod CIDR needs at least 2 host bits)").default(24),
  nodeMaskIPv6: z.number().int("must be an integer").min(0, "must be 0-126").max(126, "must be 0-126 (a pod CIDR needs at least 2 host bits)").default(64),
  vni: z.number().int("must be an integer").min(1, "must be 1-16777215 (24 bits)").max(16_777_215, "must be 1-16777215 (24 bits)").default(DEFAULT_VNI),
  vxlanPort: z.number().int("must be an integer").min(1, "must be 1-65535").max(65_535, "must be 1-65535").default(DEFAULT_VXLAN_PORT),
  /** The underlay MTU to assume when a node's interface MTU is not known (flannel's `MTU` option). */
  mtu: z.number().int("must be an integer").min(576, "must be 576-65535").max(65_535, "must be 576-65535").optional(),
};

/**
 * The cluster-wide network config a datastore holds once (flannel's net-conf.json): cluster CIDRs (one per
 * family), backend, node masks, VXLAN VNI and port, optional underlay MTU. Unknown keys are rejected.
 * @example networkConfigSchema.parse({ clusterCidrs: ["10.244.0.0/16"] }) // { backend: "vxlan", nodeMaskIPv4: 24, ... }
 */
export const networkConfigSchema = z.object(networkConfigShape).strict();

/** A validated network config (defaults filled in, CIDRs canonical). */
export type NetworkConfig = z.output<typeof networkConfigSchema>;
/** A network config as written (defaults optional). */
export type NetworkConfigInput = z.input<typeof networkConfigSchema>;
