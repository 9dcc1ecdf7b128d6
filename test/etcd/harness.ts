import type { NetworkOptions } from "@flatnet/core";
import { FakeKernel } from "../../apps/agent/test-support/fake-kernel.ts";
import { Reconciler, type SyncOutcome } from "../../apps/agent/src/reconcile/loop.ts";
import type { Datastore } from "../../apps/agent/src/datastore/datastore.ts";

// A node agent for fault tests: a real datastore, the real reconcile loop, and a fake kernel that outlives the
// agent (a restarted agent finds the routes its predecessor programmed, as on a real node).

export const HOST_GW: NetworkOptions = {
  backend: "host-gw",
  vni: 1,
  vxlanPort: 8472,
  underlayDevice: "eth0",
  underlayMtu: 1500,
  underlaySubnets: ["172.31.0.0/24"],
  vxlanDevice: "flatnet.1",
};

export class TestAgent {
  readonly kernel = new FakeKernel();
  readonly outcomes: SyncOutcome[] = [];
  datastore: Datastore | undefined;
  reconciler: Reconciler | undefined;
  podCidrs: string[] = [];
  private unwatch: (() => void) | undefined;

  constructor(
    readonly name: string,
    readonly underlayIp: string,
    private readonly open: () => Datastore | Promise<Datastore>,
  ) {}

  /** Registers (retrying while the datastore refuses, as the agent does) and starts the loop. */
  async start(): Promise<void> {
    const datastore = await this.open();
    this.datastore = datastore;
    this.podCidrs = (await datastore.register({ name: this.name, underlayIps: [this.underlayIp], vtepMac: "0e:00:00:00:00:01" })).podCidrs;
    const reconciler = new Reconciler({
      node: this.name,
      source: datastore,
      kernel: this.kernel,
      networkOptions: HOST_GW,
      resyncIntervalMs: 60_000, // no drift timer: every sync below is caused by a watch signal or a retry
      backoff: { initialMs: 20, maxMs: 400, jitter: 0 },
      masquerade: false,
      onSync: (outcome) => this.outcomes.push(outcome),
    });
    this.reconciler = reconciler;
    this.unwatch = datastore.watch(() => reconciler.trigger("datastore"));
    reconciler.start();
    await reconciler.whenSynced();
  }

  /** Stops the loop and closes the datastore; the kernel keeps its routes (flatnet never flushes on exit). */
  async stop(): Promise<void> {
    this.unwatch?.();
    await this.reconciler?.stop();
    await this.datastore?.close();
    this.reconciler = undefined;
    this.datastore = undefined;
  }

  /** Destinations this node routes, sorted. */
  routes(): string[] {
    return this.kernel.state.routes.map((route) => `${route.dst} via ${route.via}`).sort();
  }

  failures(): Extract<SyncOutcome, { ok: false }>[] {
    return this.outcomes.filter((o): o is Extract<SyncOutcome, { ok: false }> => !o.ok);
  }
}

/** The routes a node should have: one per other agent's pod CIDR, via its underlay IP. */
export function expectedRoutes(self: TestAgent, all: TestAgent[]): string[] {
  return all
    .filter((agent) => agent !== self)
    .flatMap((agent) => agent.podCidrs.map((cidr) => `${cidr} via ${agent.underlayIp}`))
    .sort();
}
