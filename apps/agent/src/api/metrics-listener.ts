import { type Server, createServer } from "node:http";
import { type HostPort, formatHostPort, parseHostPort } from "../config/metrics-address.ts";
import { runsInNetns } from "../probe/node-responder.ts";
import { closeServer, type ConnectionLimits, guardConnections, NETWORK_LISTENER_LIMITS } from "../http/connection-guard.ts";
import { type ApiLogger, type ApiRoute, createRequestListener } from "./server.ts";

// The agent's second listener (issue 5): the unix socket API is invisible to Prometheus and to kubelet's httpGet
// probes, so `--metrics-address HOST:PORT` serves a read-only subset over TCP. Nothing that reveals or changes state
// beyond the metrics themselves (/v1/state, /v1/cni, probes) is reachable there: the routes are filtered, not guarded.

/** The only routes the TCP listener serves, all GET. */
export const METRICS_LISTENER_PATHS: readonly string[] = ["/metrics", "/healthz", "/readyz"];

/** The agent's routes that the TCP listener may serve: GET /metrics, /healthz, /readyz. Everything else answers 404. */
export function metricsListenerRoutes(routes: readonly ApiRoute[]): ApiRoute[] {
  return routes.filter((route) => route.method === "GET" && METRICS_LISTENER_PATHS.includes(route.path));
}

/** A `--metrics-address` (or `FLATNET_METRICS_ADDRESS`, or `metricsAddress`) that cannot be used. */
export class MetricsAddressError extends Error {
  override readonly name = "MetricsAddressError";
  constructor(
    message: string,
    /** ERR_USAGE: a value the operator must fix (exit 2); ERR_METRICS_LISTEN: the kernel refused to listen (exit 1). */
    readonly code: "ERR_USAGE" | "ERR_METRICS_LISTEN",
  ) {
    super(message);
  }
}

/**
 * Parses `--metrics-address` and checks that this process runs in the agent's network namespace: the listener
 * opens a real socket, and an agent that programs a namespace from outside it (tests, the lab's root helpers) must
 * never open one in the wrong namespace.
 */
export async function resolveMetricsAddress(text: string, netns: string): Promise<HostPort> {
  const parsed = parseHostPort(text);
  if ("error" in parsed) throw new MetricsAddressError(`--metrics-address "${text}": ${parsed.error}`, "ERR_USAGE");
  if (!(await runsInNetns(netns))) {
    throw new MetricsAddressError(
      `--metrics-address "${text}" needs the agent to run inside network namespace "${netns}" ` +
        `(e.g. ip netns exec ${netns} flatnet agent ...); this process runs in another one, where it must not listen`,
      "ERR_USAGE",
    );
  }
  return parsed;
}

export interface MetricsListenerOptions extends HostPort {
  /** Every route of the agent; only GET /metrics, /healthz, /readyz are kept. */
  routes: readonly ApiRoute[];
  logger?: ApiLogger;
  /** Default NETWORK_LISTENER_LIMITS (5 s to send a request's headers, 64 connections, the oldest idle evicted). */
  limits?: ConnectionLimits;
}

export interface MetricsListener {
  /** The bound address, e.g. "10.0.0.5:9471" or "[fd00::5]:9471" (with the real port when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

/** Starts the read-only TCP listener; rejects with ERR_METRICS_LISTEN naming the address when the kernel refuses. */
export async function startMetricsListener(options: MetricsListenerOptions): Promise<MetricsListener> {
  const server: Server = createServer(
    createRequestListener({ routes: metricsListenerRoutes(options.routes), bodyLimitBytes: 0, ...(options.logger ? { logger: options.logger } : {}) }),
  );
  // Reachable from the node's network: bound the work one slow or idle client can cause.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  guardConnections(server, options.limits ?? NETWORK_LISTENER_LIMITS);
  const wanted = formatHostPort(options);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      const hint =
        error.code === "EADDRNOTAVAIL"
          ? " (the address is not on any interface of this network namespace)"
          : error.code === "EADDRINUSE"
            ? " (another process listens there)"
            : "";
      reject(new MetricsAddressError(`--metrics-address "${wanted}": cannot listen: ${error.code ?? error.message}${hint}`, "ERR_METRICS_LISTEN"));
    });
    server.listen({ host: options.host, port: options.port }, () => resolve());
  });
  server.removeAllListeners("error");
  server.on("error", (error) => options.logger?.warn({ err: error.message }, "metrics listener error"));
  const bound = server.address();
  const address = typeof bound === "object" && bound !== null ? formatHostPort({ host: bound.address, port: bound.port }) : wanted;
  return { address, close: () => closeServer(server) };
}
