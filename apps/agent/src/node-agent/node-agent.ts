import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { type NetworkOptions, vtepMacFor } from "@flatnet/core";
import { Registry, collectDefaultMetrics } from "prom-client";
import { evidenceSocketPath } from "../api/routes-probe.ts";
import { type AgentSelf, type MetricsListener, createApiServer, routeModules, startMetricsListener } from "../api/index.ts";
import type { HostPort } from "../config/metrics-address.ts";
import { SubnetFileWriter } from "../config/subnet-file.ts";
import { startCniWorker } from "../cni/worker.ts";
import type { Datastore, NodeRegistration } from "../datastore/datastore.ts";
import { POD_BRIDGE, type UnderlayChoice, type UnderlayInfo, createLinuxKernel, detectUnderlay, findUnderlayDevice } from "../linux/index.ts";
import type { Logger } from "../log.ts";
import { nodeProbeSocket, startNodeResponder } from "../probe/node-responder.ts";
import type { Responder } from "../probe/responder.ts";
import { backoffDelay } from "../reconcile/backoff.ts";
import { Reconciler } from "../reconcile/loop.ts";
import { registerReconcileMetrics } from "../reconcile/metrics.ts";

export interface NodeAgentOptions {
  node: string;
  netns: string;
  logger: Logger;
  /** Opens the datastore, once the underlay is known. */
  openDatastore: () => Promise<Datastore>;
  leaseTtlMs: number;
  resyncIntervalMs: number;
  underlayChoice: UnderlayChoice;
  /** --underlay-ip: the addresses to publish (default: the device's first per family). */
  underlayIps: string[];
  socketPath: string;
  vxlanDevice: string;
  masquerade: boolean;
  /** The node's probe responder port; 0: none. */
  probePort: number;
  /** The read-only TCP listener (GET /metrics, /healthz, /readyz), in the agent's own netns. */
  metricsAddress?: HostPort;
  /** The file the CNI plugin reads this node's pod CIDRs and pod MTU from. */
  subnetFile?: string;
}

/**
 * One node's agent: registers the node, keeps its lease, watches the underlay and the datastore, runs the reconciler
 * and serves the API, until SIGTERM/SIGINT. Routes stay programmed when it stops.
 */
export class NodeAgent {
  private readonly stopping = new AbortController();
  private readonly logger: Logger;
  private datastore!: Datastore;
  private reconciler!: Reconciler;
  private registration!: NodeRegistration;
  private self: AgentSelf | undefined;
  private networkOptions: NetworkOptions | undefined;
  private subnetFile: SubnetFileWriter | undefined;
  /** The node's own probe responder (node endpoints of flatnet check), restarted when its addresses change. */
  private probe: { responder: Responder; key: string } | undefined;
  private probeChain: Promise<void> = Promise.resolve();

  constructor(private readonly options: NodeAgentOptions) {
    this.logger = options.logger;
  }

  /** Runs until SIGTERM/SIGINT (or stop()). */
  async run(): Promise<void> {
    const { options, logger } = this;
    const found = await findUnderlayDevice(options.netns, options.underlayChoice);
    const underlay = await detectUnderlay(options.netns, found.device, options.underlayIps);
    logger.info({ underlay, chosenBy: found.how }, "underlay detected");
    this.datastore = await options.openDatastore();

    const signals = ["SIGTERM", "SIGINT"] as const;
    const onSignal = (signal: string) => {
      logger.info({ signal }, "stopping; routes stay programmed");
      this.stop();
    };
    for (const signal of signals) process.on(signal, onSignal);

    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const onSync = registerReconcileMetrics(registry, () => this.reconciler);
    // Checked after successful syncs, at most once a second.
    this.subnetFile = options.subnetFile === undefined ? undefined : new SubnetFileWriter(options.subnetFile, 1_000);
    this.reconciler = new Reconciler({
      node: options.node,
      source: { snapshot: () => this.datastore.snapshot() },
      kernel: createLinuxKernel(options.netns, { vxlanDevice: options.vxlanDevice, bridge: POD_BRIDGE }),
      networkOptions: () => {
        if (this.networkOptions === undefined) throw new Error("network options are not known before registration");
        return this.networkOptions;
      },
      resyncIntervalMs: options.resyncIntervalMs,
      masquerade: options.masquerade,
      logger,
      onSync: (outcome) => {
        onSync(outcome);
        if (outcome.ok) this.writeSubnetFile();
      },
    });
    const { datastore, reconciler } = this;
    const socketPath = options.socketPath;
    const routes = routeModules.flatMap((module) => module({ self: () => this.self, reconciler, datastore, registry, logger, socketPath }));
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
    let metrics: MetricsListener | undefined;
    try {
      if (options.metricsAddress !== undefined) {
        metrics = await startMetricsListener({ ...options.metricsAddress, routes, logger });
        logger.info({ address: metrics.address }, "metrics listener (GET /metrics, /healthz, /readyz) listening");
      }
      this.registration = { name: options.node, underlayIps: underlay.ips, vtepMac: vtepMacFor(options.node), underlayMtu: underlay.mtu };
      if (await this.register(underlay)) {
        heartbeat = this.startHeartbeat();
        unwatch = datastore.watch(() => reconciler.trigger("datastore"));
        underlayWatch = this.watchUnderlay(underlay);
        reconciler.start();
      }
      if (!this.stopping.signal.aborted) await once(this.stopping.signal, "abort");
    } finally {
      if (heartbeat !== undefined) clearInterval(heartbeat);
      if (underlayWatch !== undefined) clearInterval(underlayWatch);
      unwatch?.();
      await this.probeChain;
      await this.probe?.responder.close();
      await reconciler.stop();
      await cniWorker?.stop();
      await metrics?.close();
      await evidenceApi.close();
      await api.close();
      await datastore.close();
      for (const signal of signals) process.off(signal, onSignal);
    }
    logger.info({}, "stopped");
  }

  /** Ends run(): it stops serving and closes the datastore; routes stay programmed. */
  stop(): void {
    this.stopping.abort();
  }

  /** Registers (retrying until it works or the agent stops); false when it stopped first. */
  private async register(underlay: UnderlayInfo): Promise<boolean> {
    const { options, datastore, registration } = this;
    const registered = await retryUntil(this.stopping.signal, this.logger, "register", () => datastore.register(registration));
    if (registered === undefined) return false;
    const config = await datastore.config();
    this.networkOptions = {
      backend: config.backend,
      vni: config.vni,
      vxlanPort: config.vxlanPort,
      underlayDevice: underlay.device,
      underlayMtu: underlay.mtu,
      underlaySubnets: underlay.subnets,
      vxlanDevice: options.vxlanDevice,
    };
    this.self = {
      name: options.node,
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
    this.logger.info({ podCidrs: registered.podCidrs, backend: config.backend }, "registered");
    await this.ensureProbeResponder();
    return true;
  }

  private writeSubnetFile(): void {
    this.subnetFile?.update(() => {
      const podMtu = this.reconciler.podMtu;
      return this.self === undefined || podMtu === undefined ? undefined : { podCidrs: this.self.podCidrs, mtu: podMtu };
    });
  }

  private ensureProbeResponder(): Promise<void> {
    const { options, logger } = this;
    const port = options.probePort;
    this.probeChain = this.probeChain
      .then(async () => {
        const self = this.self;
        if (port === 0 || self === undefined || this.stopping.signal.aborted) return;
        const key = JSON.stringify([self.underlayIps, self.podCidrs]);
        if (this.probe?.key === key) return;
        await this.probe?.responder.close();
        this.probe = undefined;
        const controlSocket = nodeProbeSocket(options.socketPath);
        const started = await startNodeResponder({ netns: options.netns, node: options.node, underlayIps: self.underlayIps, podCidrs: self.podCidrs, port, controlSocket });
        if (started.responder === undefined) {
          logger.warn({ reason: started.reason, port }, "node probe responder not started");
          return;
        }
        this.probe = { responder: started.responder, key };
        logger.info({ port, addresses: self.underlayIps, socket: controlSocket }, "node probe responder listening");
      })
      .catch((error: Error) => logger.warn({ err: error.message }, "node probe responder failed"));
    return this.probeChain;
  }

  /** Heartbeats at a third of the lease; a store that forgot the node (removed, expired past grace) gets it re-registered. */
  private startHeartbeat(): ReturnType<typeof setInterval> {
    const { datastore, registration, logger } = this;
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
            const again = await datastore.register(registration);
            if (this.self !== undefined) this.self = { ...this.self, podCidrs: again.podCidrs };
            void this.ensureProbeResponder();
            this.reconciler.trigger("re-registered");
          } catch (failed) {
            logger.warn({ err: (failed as Error).message }, "re-registration failed; retrying at the next heartbeat");
          }
        } else {
          logger.warn({ err: (error as Error).message }, "heartbeat failed");
        }
      } finally {
        busy = false;
      }
    }, Math.max(100, Math.floor(this.options.leaseTtlMs / 3)));
  }

  /** Re-reads the underlay device every resync interval; a change is published, so peers re-point routes and FDB entries. */
  private watchUnderlay(initial: UnderlayInfo): ReturnType<typeof setInterval> {
    const { options, logger } = this;
    let known = JSON.stringify(initial);
    let busy = false;
    const timer = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        const next = await detectUnderlay(options.netns, initial.device, options.underlayIps);
        if (JSON.stringify(next) !== known) {
          logger.warn({ before: JSON.parse(known), after: next }, "underlay changed");
          await this.onUnderlayChanged(next);
          known = JSON.stringify(next);
        }
      } catch (error) {
        logger.warn({ err: (error as Error).message }, "underlay check failed; routes stay as they are");
      } finally {
        busy = false;
      }
    }, options.resyncIntervalMs);
    timer.unref();
    return timer;
  }

  // A new underlay address (DHCP, a moved VM).
  private async onUnderlayChanged(next: UnderlayInfo): Promise<void> {
    Object.assign(this.registration, { underlayIps: next.ips, underlayMtu: next.mtu });
    await this.datastore.register(this.registration);
    this.networkOptions = { ...this.networkOptions!, underlayMtu: next.mtu, underlaySubnets: next.subnets };
    if (this.self !== undefined) this.self = { ...this.self, underlayIps: next.ips, underlayMtu: next.mtu };
    this.reconciler.trigger("underlay-changed");
    await this.ensureProbeResponder();
  }
}

/** Retries `body` with capped backoff until it succeeds or `signal` aborts (then undefined). */
async function retryUntil<T>(signal: AbortSignal, logger: Logger, what: string, body: () => Promise<T>): Promise<T | undefined> {
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      return await body();
    } catch (error) {
      const retryInMs = backoffDelay(attempt, { initialMs: 500, maxMs: 30_000 });
      logger.warn({ err: (error as Error).message, code: (error as { code?: string }).code, retryInMs }, `${what} failed`);
      await sleep(retryInMs, undefined, { signal }).catch(() => undefined); // stop() ends the wait at once
    }
  }
  return undefined;
}
