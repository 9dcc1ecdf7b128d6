import { type KernelState, type Plan, applyPlan } from "@flatnet/core";
import type { HostSetup, Kernel } from "../src/linux/kernel.ts";

/** An in-memory kernel (the core's applyPlan as its model) for loop tests: counts calls, fails on demand. */
export class FakeKernel implements Kernel {
  state: KernelState = { routes: [], neighbours: [], fdb: [] };
  reads = 0;
  applies: Plan[] = [];
  hostSetups: HostSetup[] = [];
  /** Errors thrown by the next calls of each kind, in order. */
  failReads: Error[] = [];
  failApplies: Error[] = [];
  /** Resolves a held apply: set `hold` to make apply wait until released. */
  hold: Promise<void> | undefined;

  async read(): Promise<KernelState> {
    this.reads++;
    const failure = this.failReads.shift();
    if (failure) throw failure;
    return structuredClone(this.state);
  }

  async apply(plan: Plan): Promise<void> {
    if (this.hold) await this.hold;
    const failure = this.failApplies.shift();
    if (failure) throw failure;
    this.applies.push(plan);
    this.state = applyPlan(this.state, plan);
  }

  async ensureHost(setup: HostSetup): Promise<void> {
    this.hostSetups.push(setup);
  }
}
