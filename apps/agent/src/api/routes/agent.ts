import { type AgentContext, type RouteModule } from "../context.ts";
import { ApiProblem, type ApiRoute } from "../server.ts";
import { buildInfo } from "../../build-info.ts";

/** Health, readiness, version, this node, and the reconcile state. */
export const agentRoutes: RouteModule = (context: AgentContext): ApiRoute[] => [
  { method: "GET", path: "/healthz", handler: () => ({ body: { status: "ok" } }) },
  {
    method: "GET",
    path: "/readyz",
    handler: () => {
      if (!context.reconciler.synced) {
        const { stats } = context.reconciler.current;
        throw new ApiProblem(503, "Not Ready", "the first sync has not completed yet", stats.lastError === undefined ? {} : { lastError: stats.lastError });
      }
      return { body: { status: "ready" } };
    },
  },
  // `flatnet version` asks every reachable agent; answered before registration too.
  { method: "GET", path: "/v1/version", handler: () => ({ body: { ...buildInfo(), node: context.self()?.name ?? null } }) },
  {
    method: "GET",
    path: "/v1/node",
    handler: () => {
      const self = context.self();
      if (self === undefined) throw new ApiProblem(503, "Not Ready", "the node is not registered yet");
      return { body: { ...self, podMtu: context.reconciler.podMtu ?? null } };
    },
  },
  {
    method: "GET",
    path: "/v1/state",
    handler: () => {
      const state = context.reconciler.snapshotState();
      return {
        body: {
          node: context.self()?.name ?? null,
          desired: state.desired ?? null,
          actual: state.actual ?? null,
          lastPlan: state.lastPlan ?? null,
          skipped: state.skipped,
          stats: state.stats,
        },
      };
    },
  },
];
