/** The path tracer: evidence schemas, iptables-save parsing, hop-by-hop tracing and findings (pure). */
export * from "./evidence.ts";
export * from "./iptables-save.ts";
export * from "./trace.ts";
export * from "./conntrack.ts";
export * from "./nft-trace.ts";
