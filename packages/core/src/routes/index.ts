export * from "./types.ts";
export { bridgeGateway, HOST_VETH_PREFIX, POD_BRIDGE } from "./bridge.ts";
export { safeParseMac, safeParseVtepMac, vtepMacFor } from "./vtep-mac.ts";
export { computeNodeNetwork, SKIP_CODES } from "./compute.ts";
export { clearParseCache } from "./parse-cache.ts";
export { applyPlan, diffNetwork, isUnicastMac, sortKernelState } from "./diff.ts";
export { renderPlan, renderStep, type RenderedBatch } from "./render.ts";
