import { readFileSync } from "node:fs";
import { type ClusterSnapshot, type NetworkOptions, vtepMacFor } from "@flatnet/core";
import { type Command, Option } from "commander";
import { Registry, collectDefaultMetrics } from "prom-client";
import { evidenceSocketPath } from "../api/routes-probe.ts";
import { type AgentSelf, type MetricsListener, createApiServer, resolveMetricsAddress, routeModules, startMetricsListener } from "../api/index.ts";
import { parseNetworkConfig } from "../config/network-config.ts";
import { DURATION_FORMS, durationMs } from "../config/duration.ts";
import { POD_BRIDGE, type UnderlayChoice, type UnderlayInfo, cleanupNode, createLinuxKernel, detectUnderlay, findUnderlayDevice } from "../linux/index.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogLevel, type Logger, createLogger, resolveLogFormat } from "../log.ts";
import { backoffDelay } from "../reconcile/backoff.ts";
import { Reconciler } from "../reconcile/loop.ts";
import { registerReconcileMetrics } from "../reconcile/metrics.ts";
import type { Datastore } from "../datastore/datastore.ts";
import { createDatastore } from "../datastore/factory.ts";
import { nodeProbeSocket, startNodeResponder } from "../probe/node-responder.ts";
import type { Responder } from "../probe/responder.ts";
import { addClusterOptions, applyAgentSettings, datastoreOptionsFor, type ClusterFlags } from "../datastore/datastore-options.ts";
import { SubnetFileWriter } from "../config/subnet-file.ts";
import { startCniWorker } from "../cni/worker.ts";
import { addExamples } from "./examples.ts";

export interface AgentOptions extends ClusterFlags {
  node?: string;
  netns: string;
  datastore: string;
  store?: string;
  networkConfig?: string;
  underlayDevice?: string;
  underlayCanReach?: string;
  underlayIp: string[];
  /** The node's own address (Kubernetes: its InternalIP, the downward API's status.hostIP): finds the underlay device. */
  nodeIp?: string;
  socket?: string;
  resyncInterval: string;
  leaseTtl: string;
  masquerade: boolean;
  vxlanDevice: string;
  logLevel: string;
  /** json or text; default: FLATNET_LOG_FORMAT, else text on a terminal, JSON otherwise. */
  logFormat?: string;
  cleanup?: boolean;
  /** Port of the node's probe responder on its underlay IPs (`flatnet check` node endpoints); "0" disables it. */
  probePort?: string;
}

/** A command-line value that cannot be right; printed as one line on stderr with exit code 2. */
export class UsageError extends Error {
  readonly code = "ERR_USAGE";
  override readonly name = "UsageError";
}

export function registerAgentCommand(program: Command): void {
  const command = program
    .command("agent")
    .description("Run the node agent: register, program routes for every peer, keep them in sync, serve the API")
    .option("--node <name>", "this node's name (required unless --cleanup)")
    .option("--netns <ns>", "the network namespace to program (a name in /run/netns; required)")
    .addOption(new Option("--datastore <kind>", "where nodes meet").choices(["embedded", "etcd", "kubernetes"]).default("embedded"))
    .option("--store <path>", "the embedded store's SQLite file (shared by the agents of one machine)")
    .option("--network-config <path>", "JSON network config stored when the store has none (clusterCidrs, backend, ...)")
    .option("--underlay-device <dev>", "the underlay interface in the namespace (default: found, see --underlay-can-reach)")
    .option("--underlay-can-reach <ip>", "use the interface of the route to this address as the underlay (as flannel's --iface-can-reach)")
    .option("--node-ip <ip>", "the node's own address (Kubernetes InternalIP); without --underlay-device the interface holding it is the underlay")
    .option("--underlay-ip <ip>", "use this underlay address (repeat per family); default: the device's first per family", collect, [])
    .option("--socket <path>", "the API's unix socket (default /run/flatnet/<node>.sock)")
    .option("--resync-interval <duration>", "periodic resync that repairs drift (e.g. 10s, 500ms)", "10s")
    .option("--lease-ttl <duration>", "a node not heartbeating this long leaves the cluster", "30s")
    .option("--no-masquerade", "do not masquerade traffic leaving the cluster CIDRs")
    .option("--vxlan-device <name>", "the VXLAN device's name", "flatnet.1")
    .option("--probe-port <port>", "TCP+UDP port of the node's probe responder on its underlay IPs (flatnet check); 0 disables it", "7471")
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS as string[]).default("info"))
    .addOption(new Option("--log-format <format>", "log lines as JSON or text (default: $FLATNET_LOG_FORMAT, else text on a terminal, JSON otherwise)").choices([...LOG_FORMATS]))
    .option("--cleanup", "remove what the agent owns in the namespace (routes proto 77, VXLAN device, nft table), then exit");
  addExamples(
    addClusterOptions(command),
    "flatnet agent --node n1 --netns fn-node1 --store /var/lib/flatnet/flatnet.db   # (root)",
    "flatnet agent --datastore kubernetes --node $NODE_NAME --netns host           # as the DaemonSet runs it",
    "flatnet agent --netns fn-node1 --cleanup                                      # remove what the agent programmed",
  ).action(async (flags: AgentOptions, self: Command) => {
      try {
        const options = applyAgentSettings(flags, self);
        process.exitCode = await runAgent(options);
      } catch (error) {
        const code = (error as { code?: string }).code;
        process.stderr.write(`flatnet agent: ${(error as Error).message}\n`);
        process.exitCode = code === "ERR_USAGE" || code === "ERR_INVALID_CONFIG" ? 2 : 1;
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A duration flag in milliseconds (see durationMs); a usage error naming the flag when it is not one, or is zero. */
export function parseDuration(text: string, flag: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new UsageError(`${flag} "${text}" is not a duration; use ${DURATION_FORMS}`);
  if (ms <= 0) throw new UsageError(`${flag} "${text}" must be longer than zero`);
  return ms;
}

/** Runs the agent until SIGTERM/SIGINT; resolves with the exit code. Routes stay programmed when it exits. */
export async function runAgent(options: AgentOptions): Promise<number> {
  if (!options.netns) throw new UsageError("--netns <ns> is required (or FLATNET_NETNS, or netns in --config)");
  const logger = createLogger({ level: options.logLevel as LogLevel, format: resolveLogFormat(options.logFormat), base: { node: options.node, netns: options.netns } });
  if (options.cleanup) {
    await cleanupNode(options.netns, { vxlanDevice: options.vxlanDevice });
    logger.info({}, "removed flatnet's routes, VXLAN device and nft table; pods left alone");
    return 0;
  }
  if (options.node === undefined || options.node === "") throw new UsageError("--node <name> is required");
  const resyncIntervalMs = parseDuration(options.resyncInterval, "--resync-interval");
  const leaseTtlMs = parseDuration(options.leaseTtl, "--lease-ttl");
  const networkConfig = options.networkConfig === undefined ? undefined : readNetworkConfig(options.networkConfig);
  const node = options.node;
  const socketPath = options.socket ?? `/run/flatnet/${node}.sock`;
  const probePort = parseProbePort(options.probePort ?? "7471");
  // The read-only TCP listener (GET /metrics, /healthz, /readyz), only in the agent's own netns.
  const metricsAddress = options.metricsAddress === undefined ? undefined : await resolveMetricsAddress(options.metricsAddress, options.netns);

  const found = await findUnderlayDevice(options.netns, underlayChoice(options));
  const underlay = await detectUnderlay(options.netns, found.device, options.underlayIp);
  logger.info({ underlay, chosenBy: found.how }, "underlay detected");
  const datastore = await createDatastore(datastoreOptionsFor(options, { leaseTtlMs, networkConfig }));

  const stopping = new AbortController();
  const signals = ["SIGTERM", "SIGINT"] as const;
  const onSignal = (signal: string) => {
    logger.info({ signal }, "stopping; routes stay programmed");
    stopping.abort();
  };
  for (const signal of signals) process.on(signal, onSignal);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let self: AgentSelf | undefined;
  let networkOptions: NetworkOptions | undefined;
  let reconciler: Reconciler | undefined;
  const onSync = registerReconcileMetrics(registry, () => reconciler);
  // The subnet file the CNI plugin reads (pod CIDRs, pod MTU), checked after successful syncs, at most once a second.
  const subnetFile = options.subnetFile === undefined ? undefined : new SubnetFileWriter(options.subnetFile, 1_000);
  const writeSubnetFile = () =>
    subnetFile?.update(() => {
      const podMtu = reconciler?.snapshotState().desired?.podMtu;
      return self === undefined || podMtu === undefined ? undefined : { podCidrs: self.podCidrs, mtu: podMtu };
    });
  const kernel = createLinuxKernel(options.netns, { vxlanDevice: options.vxlanDevice, bridge: POD_BRIDGE });
  const source = {
    snapshot: (): Promise<ClusterSnapshot> => datastore.snapshot(),
  };
  reconciler = new Reconciler({
    node,
    source,
    kernel,
    networkOptions: () => {
      if (networkOptions === undefined) throw new Error("network options are not known before registration");
      return networkOptions;
    },
    resyncIntervalMs,
    masquerade: options.masquerade,
    logger,
    onSync: (outcome) => {
      onSync(outcome);
      if (outcome.ok) writeSubnetFile();
    },
  });
  const routes = routeModules.flatMap((module) => module({ self: () => self, reconciler: reconciler!, datastore, registry, logger, socketPath }));
  const api = createApiServer({ socketPath, routes, logger });
  await api.listen();
  logger.info({ socket: socketPath }, "API listening");
  // The read-only evidence of the path tracer, for any local reader (on a cluster: the probe responder pod, which
  // relays it to `flatnet check --kubeconfig` through pods/proxy); nothing on it can change the node.
  const evidenceApi = createApiServer({ socketPath: evidenceSocketPath(socketPath), routes: routes.filter((r) => r.method === "POST" && r.path === "/v1/evidence"), logger, socketMode: 0o666 });
  await evidenceApi.listen();
  // The CNI plugin's fast path, served warm next to the API socket (<socket>-cni.sock; cni/worker.ts).
  const cniWorker = startCniWorker({ apiSocket: socketPath, logger });

  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let underlayWatch: ReturnType<typeof setInterval> | undefined;
  let unwatch: (() => void) | undefined;
  // The node's own probe responder (node endpoints of flatnet check), restarted when its addresses change.
  let probe: { responder: Responder; key: string } | undefined;
  let probeChain: Promise<void> = Promise.resolve();
  let metrics: MetricsListener | undefined;
  const ensureProbeResponder = (): Promise<void> =>
    (probeChain = probeChain.then(async () => {
      if (probePort === 0 || self === undefined || stopping.signal.aborted) return;
      const key = JSON.stringify([self.underlayIps, self.podCidrs]);
      if (probe?.key === key) return;
      await probe?.responder.close();
      probe = undefined;
      const started = await startNodeResponder({
        netns: options.netns,
        node,
        underlayIps: self.underlayIps,
        podCidrs: self.podCidrs,
        port: probePort,
        controlSocket: nodeProbeSocket(socketPath),
      });
      if (started.responder === undefined) {
        logger.warn({ reason: started.reason, port: probePort }, "node probe responder not started");
        return;
      }
      probe = { responder: started.responder, key };
      logger.info({ port: probePort, addresses: self.underlayIps, socket: nodeProbeSocket(socketPath) }, "node probe responder listening");
    }).catch((error: Error) => logger.warn({ err: error.message }, "node probe responder failed")));
  try {
    if (metricsAddress !== undefined) {
      metrics = await startMetricsListener({ ...metricsAddress, routes, logger });
      logger.info({ address: metrics.address }, "metrics listener (GET /metrics, /healthz, /readyz) listening");
    }
    const registration = { name: node, underlayIps: underlay.ips, vtepMac: vtepMacFor(node), underlayMtu: underlay.mtu };
    const registered = await retryUntil(stopping.signal, logger, "register", () => datastore.register(registration));
    if (registered !== undefined) {
      const config = await datastore.config();
      networkOptions = {
        backend: config.backend,
        vni: config.vni,
        vxlanPort: config.vxlanPort,
        underlayDevice: underlay.device,
        underlayMtu: underlay.mtu,
        underlaySubnets: underlay.subnets,
        vxlanDevice: options.vxlanDevice,
      };
      self = {
        name: node,
        netns: options.netns,
        podCidrs: registered.podCidrs,
        underlayIps: underlay.ips,
        underlayDevice: underlay.device,
        underlayMtu: underlay.mtu,
        vtepMac: registration.vtepMac,
        backend: config.backend,
        vxlanDevice: options.vxlanDevice,
        bridge: POD_BRIDGE,
      };
      logger.info({ podCidrs: registered.podCidrs, backend: config.backend }, "registered");
      await ensureProbeResponder();
      heartbeat = startHeartbeat(datastore, registration, leaseTtlMs, logger, reconciler, (again) => {
        if (self !== undefined) self = { ...self, podCidrs: again.podCidrs };
        void ensureProbeResponder();
      });
      unwatch = datastore.watch(() => reconciler!.trigger("datastore"));
      underlayWatch = watchUnderlay(options, underlay, resyncIntervalMs, logger, async (next) => {
        // A new underlay address (DHCP, a moved VM): publish it, so peers re-point their routes and FDB entries.
        Object.assign(registration, { underlayIps: next.ips, underlayMtu: next.mtu });
        await datastore.register(registration);
        networkOptions = { ...networkOptions!, underlayMtu: next.mtu, underlaySubnets: next.subnets };
        if (self !== undefined) self = { ...self, underlayIps: next.ips, underlayMtu: next.mtu };
        reconciler!.trigger("underlay-changed");
        await ensureProbeResponder();
      });
      reconciler.start();
    }
    await new Promise<void>((resolve) => {
      if (stopping.signal.aborted) resolve();
      else stopping.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    if (heartbeat !== undefined) clearInterval(heartbeat);
    if (underlayWatch !== undefined) clearInterval(underlayWatch);
    unwatch?.();
    await probeChain;
    await probe?.responder.close();
    await reconciler.stop();
    await cniWorker?.stop();
    await metrics?.close();
    await evidenceApi.close();
    await api.close();
    await datastore.close();
    for (const signal of signals) process.off(signal, onSignal);
  }
  logger.info({}, "stopped");
  return 0;
}

/** `--probe-port`: 0 (off) or a TCP/UDP port. */
export function parseProbePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--probe-port "${text}" must be an integer from 0 (off) to 65535`);
  }
  return port;
}

function readNetworkConfig(path: string) {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`--network-config "${path}" cannot be read: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--network-config "${path}" is not JSON: ${(error as Error).message}`);
  }
  return parseNetworkConfig(data, path);
}

/** Retries `body` with capped backoff until it succeeds or `signal` aborts (then undefined). */
async function retryUntil<T>(signal: AbortSignal, logger: Logger, what: string, body: () => Promise<T>): Promise<T | undefined> {
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      return await body();
    } catch (error) {
      const retryInMs = backoffDelay(attempt, { initialMs: 500, maxMs: 30_000 });
      logger.warn({ err: (error as Error).message, code: (error as { code?: string }).code, retryInMs }, `${what} failed`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, retryInMs);
        signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
    }
  }
  return undefined;
}

/** The flags that choose the underlay device, in the order findUnderlayDevice tries them. */
export function underlayChoice(options: Pick<AgentOptions, "underlayDevice" | "underlayCanReach" | "underlayIp" | "nodeIp">): UnderlayChoice {
  const choice: UnderlayChoice = { ips: options.underlayIp.length > 0 ? options.underlayIp : options.nodeIp ? [options.nodeIp] : [] };
  if (options.underlayDevice) choice.device = options.underlayDevice;
  if (options.underlayCanReach) choice.canReach = options.underlayCanReach;
  return choice;
}

/** Re-reads the underlay device every resync interval; calls `onChange` when its addresses, MTU or subnets change. */
function watchUnderlay(
  options: AgentOptions,
  initial: UnderlayInfo,
  intervalMs: number,
  logger: Logger,
  onChange: (next: UnderlayInfo) => Promise<void>,
): ReturnType<typeof setInterval> {
  let known = JSON.stringify(initial);
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const next = await detectUnderlay(options.netns, initial.device, options.underlayIp);
      if (JSON.stringify(next) !== known) {
        logger.warn({ before: JSON.parse(known), after: next }, "underlay changed");
        await onChange(next);
        known = JSON.stringify(next);
      }
    } catch (error) {
      logger.warn({ err: (error as Error).message }, "underlay check failed; routes stay as they are");
    } finally {
      busy = false;
    }
  }, intervalMs);
  timer.unref();
  return timer;
}

/** Heartbeats at a third of the lease; a store that forgot the node (removed, expired past grace) gets it re-registered. */
function startHeartbeat(
  datastore: Datastore,
  registration: Parameters<Datastore["register"]>[0],
  leaseTtlMs: number,
  logger: Logger,
  reconciler: Reconciler,
  onRegistered: (node: { podCidrs: string[] }) => void,
): ReturnType<typeof setInterval> {
  let busy = false;
  return setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      await datastore.heartbeat(registration.name);
    } catch (error) {
      if ((error as { code?: string }).code === "ERR_NOT_FOUND") {
        logger.warn({}, "the datastore no longer knows this node; registering again");
        try {
          onRegistered(await datastore.register(registration));
          reconciler.trigger("re-registered");
        } catch (again) {
          logger.warn({ err: (again as Error).message }, "re-registration failed; retrying at the next heartbeat");
        }
      } else {
        logger.warn({ err: (error as Error).message }, "heartbeat failed");
      }
    } finally {
      busy = false;
    }
  }, Math.max(100, Math.floor(leaseTtlMs / 3)));
}
