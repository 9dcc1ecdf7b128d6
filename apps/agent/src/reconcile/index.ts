export * from "./backoff.ts";
export * from "./host-setup.ts";
export * from "./loop.ts";
