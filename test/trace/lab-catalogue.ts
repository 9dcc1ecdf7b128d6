import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProbeReport } from "@flatnet/core";
import { startLabResponders } from "../../apps/agent/src/lab/probe-source.ts";
import { isRoot } from "../probe/topology.ts";
import { built, flatnet, labUp } from "./lab-cli.ts";
import { expectExplained, waitHealthy, type Fault } from "./catalogue.ts";

// A fault catalogue of the tracer on a `flatnet lab` with real agents: the lab, its check as a user runs it, and
// each fault in turn (the healthy lab first, repaired after each).

export interface Lab {
  stateDir: string;
  ns(name: string): string;
  check(): Promise<ProbeReport>;
}

/** A 3-node x `podsPerNode` lab of `backend` with responders, its check, and each fault of `faults` in turn. */
export function labCatalogue(backend: "host-gw" | "vxlan" | "auto", prefix: string, podsPerNode: number, faults: (lab: Lab) => Fault[]): void {
  describe.skipIf(!isRoot() || !built)(`path tracer: faults of the ${backend} path, on a flatnet lab`, () => {
    const stateDir = mkdtempSync(join(tmpdir(), prefix));
    const lab: Lab = {
      stateDir,
      ns: (name) => `${prefix}${name}`,
      // As a user would: `flatnet check` of the lab, its JSON report.
      async check() {
        const r = flatnet(["check", "--state-dir", stateDir, "--no-include-nodes", "--family", "IPv4", "--timeout", "1000", "--retries", "1", "-o", "json"]);
        expect(r.status === 0 || r.status === 1, r.stderr).toBe(true);
        return JSON.parse(r.stdout) as ProbeReport;
      },
    };
    const pods = 3 * podsPerNode;

    beforeAll(async () => {
      labUp(["--prefix", prefix, "--state-dir", stateDir, "--nodes", "3", "--pods-per-node", String(podsPerNode), "--backend", backend]);
      await startLabResponders(stateDir);
    }, 240_000);

    afterAll(() => {
      flatnet(["lab", "down", "--state-dir", stateDir]);
      rmSync(stateDir, { recursive: true, force: true });
    });

    it("the healthy lab: every pair ok", async () => {
      expect((await lab.check()).summary.line).toBe(`0/${pods * (pods - 1)} pairs failed (0 NAT violations), 0 excluded`);
    }, 60_000);

    it.each(faults(lab).map((f, i) => [i + 1, f.name, f] as const))("fault %i: %s", async (_i, _name, fault) => {
      await waitHealthy(() => lab.check());
      await fault.inject();
      try {
        expectExplained(await lab.check(), fault);
      } finally {
        await fault.repair();
      }
    }, 120_000);
  });
}
