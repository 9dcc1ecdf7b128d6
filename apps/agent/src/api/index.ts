export * from "./server.ts";
export * from "./context.ts";
export { routeModules } from "./modules.ts";
export * from "./metrics-listener.ts";
