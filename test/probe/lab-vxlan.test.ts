import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProbePlan, DEFAULT_PROBE_OPTIONS, type ProbeReport } from "@flatnet/core";
import { runProbe } from "../../apps/agent/src/probe/engine.ts";
import { labInventory, labPodMtu, labStateSource, requireLabState, startLabResponders } from "../../apps/agent/src/lab/probe-source.ts";
import { responderSocket } from "../../apps/agent/src/lab/names.ts";
import { responderTransport } from "../../apps/agent/src/probe/transport.ts";
import { inNetns, isRoot } from "./topology.ts";

// The real thing: a `flatnet lab` with the vxlan backend and real agents (prefix fn-tp-v-), responders started by the
// probe lab source. Fault: node1's agent is killed (so nothing repairs it) and node1's neighbour entry for node2's
// VTEP gets a wrong MAC. The check must fail exactly the node1<->node2 pairs and name the stale VTEP MAC.

const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const main = join(repo, "apps/agent/dist/main.js");
const built = existsSync(main) && existsSync(join(repo, "apps/agent/dist/cni/flatnet")) && existsSync(join(repo, "apps/agent/dist/probe-responder.js"));
const PREFIX = "fn-tp-v-";

const skip = !isRoot() || !built;
if (skip) console.log(`lab vxlan probe test skipped: ${!isRoot() ? "needs root" : "needs the built agent (npm run build -w @flatnet/agent)"}`);

function flatnet(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(skip)("flatnet check on a vxlan lab with real agents", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "fn-tp-v-"));

  beforeAll(async () => {
    // The lab rebuilds from scratch on a retry; its own flakiness is not what this test is about.
    let up = flatnet(["lab", "up", "--prefix", PREFIX, "--state-dir", stateDir, "--nodes", "3", "--pods-per-node", "1", "--backend", "vxlan"]);
    for (let attempt = 2; up.status !== 0 && attempt <= 3; attempt++) {
      up = flatnet(["lab", "up", "--prefix", PREFIX, "--state-dir", stateDir, "--nodes", "3", "--pods-per-node", "1", "--backend", "vxlan"]);
    }
    expect(up.status, up.out).toBe(0);
    await startLabResponders(stateDir);
  }, 180_000);

  afterAll(() => {
    flatnet(["lab", "down", "--state-dir", stateDir]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function check(): Promise<ProbeReport> {
    const state = await requireLabState(stateDir);
    const inventory = labInventory(state);
    const podMtu = await labPodMtu(state);
    return runProbe({
      cluster: inventory.cluster,
      plan: buildProbePlan(inventory, { mode: "all-pods" }),
      options: { ...DEFAULT_PROBE_OPTIONS, podMtu, retries: 1 },
      transport: responderTransport((src) => ({ socketPath: responderSocket(stateDir, src.pod) })),
      nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
      states: labStateSource(stateDir, state, podMtu),
      retryBackoffMs: 0,
    });
  }

  it("a healthy vxlan lab: every pair ok and NAT-free, at the vxlan pod MTU", async () => {
    const report = await check();
    expect(report.summary.line).toBe("0/6 pairs failed (0 NAT violations), 0 excluded");
    expect(report.options.podMtu).toBe(1450);
    expect(report.results.every((r) => r.nat.verdict === "nat-free" && r.mtu?.udpOk === true && r.mtu.udpBytes === 1422)).toBe(true);
  }, 60_000);

  it("a stale VTEP MAC on node1 (its agent down): exactly the node1<->node2 pairs fail, the stale MAC is named", async () => {
    expect(flatnet(["lab", "kill-agent", "node1", "--state-dir", stateDir]).status).toBe(0);
    const state = await requireLabState(stateDir);
    const node1 = state.nodes.find((n) => n.name === "node1")!;
    const node2 = state.nodes.find((n) => n.name === "node2")!;
    const route = JSON.parse(inNetns(node1.netns, "ip", ["-j", "route", "show", node2.podCidrs[0]!]))[0] as { gateway: string };
    const vtepMac = JSON.parse(inNetns(node2.netns, "ip", ["-j", "link", "show", "dev", "flatnet.1"]))[0].address as string;
    inNetns(node1.netns, "ip", ["neigh", "replace", route.gateway, "lladdr", "02:00:00:00:00:99", "dev", "flatnet.1", "nud", "permanent"]);

    const report = await check();
    const broken = report.results.filter((r) => r.verdict !== "ok");
    expect(broken.map((r) => r.pair.id).sort()).toEqual(["pod-node1-1>pod-node2-1/IPv4", "pod-node2-1>pod-node1-1/IPv4"]);
    for (const r of broken) {
      expect(r.verdict).toBe("failed");
      expect(r.diagnosis.map((d) => [d.code, d.node, d.message])).toEqual([
        ["stale-vtep-mac", "node1", `VTEP MAC of node2 is stale on node1: ${route.gateway} -> 02:00:00:00:00:99, node2's VXLAN device is ${vtepMac}`],
      ]);
    }
  }, 60_000);
});
