import type { Registry } from "prom-client";
import type { Logger } from "../log.ts";
import type { Reconciler } from "../reconcile/loop.ts";
import type { Datastore } from "../datastore/datastore.ts";
import type { ApiRoute } from "./server.ts";

/** This agent's node as registered: what `GET /v1/node` answers. */
export interface AgentSelf {
  name: string;
  netns: string;
  podCidrs: string[];
  underlayIps: string[];
  underlayDevice: string;
  underlayMtu: number;
  vtepMac: string;
  backend: string;
  vxlanDevice: string;
  bridge: string;
}

/** What route modules get to build their handlers from. */
export interface AgentContext {
  self(): AgentSelf | undefined;
  reconciler: Reconciler;
  datastore: Datastore;
  registry: Registry;
  logger: Logger;
  /** This agent's API socket. */
  socketPath: string;
}

/** A group of API routes; register one in src/api/modules.ts. */
export type RouteModule = (context: AgentContext) => ApiRoute[];
