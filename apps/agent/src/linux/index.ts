// The Linux adapter: the only code in flatnet that touches a kernel. Every function takes the namespace to act in.
export * from "./exec.ts";
export * from "./read.ts";
export * from "./apply.ts";
export * from "./batch-session.ts";
export * from "./sysctl.ts";
export * from "./masquerade.ts";
export * from "./underlay.ts";
export * from "./cleanup.ts";
export * from "./pod.ts";
export * from "./kernel.ts";
export * from "./flatnet-routes.ts";
export * from "./node-facts.ts";
export * from "./netns.ts";
export * from "./conntrack.ts";
export * from "./nft-trace.ts";
export * from "./evidence.ts";
