import type { RouteModule } from "./context.ts";
import { agentRoutes } from "./routes/agent.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { probeRouteModule } from "./routes-probe.ts";
import { cniRouteModule } from "./routes-cni.ts";
import { clusterMetricsRoutes } from "../metrics/cluster-metrics.ts";

// Every route module the agent serves. Add yours with one line: import it, append it here.
export const routeModules: RouteModule[] = [agentRoutes, metricsRoutes, clusterMetricsRoutes, probeRouteModule, cniRouteModule];
