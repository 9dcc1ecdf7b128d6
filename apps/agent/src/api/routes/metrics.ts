import type { RouteModule } from "../context.ts";

/** Prometheus text exposition of the agent's registry. */
export const metricsRoutes: RouteModule = (context) => [
  {
    method: "GET",
    path: "/metrics",
    handler: async () => ({ text: await context.registry.metrics(), contentType: context.registry.contentType }),
  },
];
