/**
 * @flatnet/core: the pure, portable core of flatnet. It computes and never touches a kernel:
 * IP/CIDR math, cluster and node IPAM, desired kernel state per node and its diff, probe protocol types.
 */
export * from "./errors.ts";
export * from "./ip/index.ts";
export * from "./cidr/index.ts";
export * from "./ipam/index.ts";
export * from "./routes/index.ts";
export * from "./probe/index.ts";
export * from "./trace/index.ts";
export * from "./schema/index.ts";
