import type { AgentContext, RouteModule } from "./context.ts";
import type { ApiRoute } from "./server.ts";
import { agentRoutes } from "./routes/agent.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { probeRouteModule } from "./routes-probe.ts";
import { cniRouteModule } from "./routes-cni.ts";
import { podIpRefreshMs, registerClusterMetrics } from "../metrics/cluster-metrics.ts";

// Every route module the agent serves. Add yours with one line: import it, append it here.
export const routeModules: RouteModule[] = [agentRoutes, metricsRoutes, clusterMetricsRoutes, probeRouteModule, cniRouteModule];

/** Registers the cluster metrics on the agent's registry (it serves no routes of its own). */
function clusterMetricsRoutes(context: AgentContext): ApiRoute[] {
  registerClusterMetrics({ registry: context.registry, datastore: context.datastore, podCidrs: () => context.self()?.podCidrs, podIpRefreshMs: podIpRefreshMs(process.env) });
  return [];
}
