import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProbePlan, type ProbeReport } from "@flatnet/core";
import { runProbe } from "../../apps/agent/src/probe/engine.ts";
import { kernelStateSource } from "../../apps/agent/src/probe/node-state.ts";
import { responderTransport } from "../../apps/agent/src/probe/transport.ts";
import { inNetns, ipBatch, isRoot, ProbeTopology } from "../probe/topology.ts";
import { between, brokenResults } from "./catalogue.ts";

// Conntrack evidence per flow, on a hand-built 2-node x 2-pod host-gw network (fn-tx-k*): a MASQUERADE on node-2
// shows in the probe flows' entries and is named; once repaired, its entries stay in node-2's table, and a later
// fault between the same pods must not be blamed on them.

const PORT = 7471;
const TOKEN = "fn-tx-probe-token-0123456789";
const root = isRoot();
if (!root) console.log("conntrack evidence test skipped: it needs root to create network namespaces");

describe.skipIf(!root)("conntrack evidence of the probe flow", () => {
  const topo = new ProbeTopology("k", 2, 2, "fn-tx-");
  const n2 = topo.node("node-2").netns;
  const masquerade = ["-t", "nat", "-A", "POSTROUTING", "-s", "10.244.2.0/24", "-d", "10.244.0.0/16", "!", "-o", "fn-br0", "-j", "MASQUERADE"];
  /** node-2's entries from its pods to node-1's pods whose reply goes to node-2's own address: the MASQUERADE's. */
  const natEntries = (): string[] => inNetns(n2, "conntrack", ["-L", "-o", "extended"], undefined, true).split("\n").filter((l) => / src=10\.244\.2\.\d+ dst=10\.244\.1\.\d+ .* dst=172\.31\.0\.12 /.test(l));

  beforeAll(async () => {
    topo.up();
    await topo.startResponders(PORT, TOKEN);
  }, 60_000);
  afterAll(() => topo.cleanup());

  async function check(): Promise<ProbeReport> {
    const inventory = topo.inventory(PORT);
    return runProbe({
      cluster: inventory.cluster,
      plan: buildProbePlan(inventory, { mode: "all-pods" }),
      options: { udpCount: 2, tcpCount: 1, mtuTcpBytes: 16384, podMtu: 1500, timeoutMs: 1000, retries: 1, concurrency: 16 },
      transport: responderTransport((src) => ({ socketPath: topo.controlSocket(src.pod) })),
      nodeIps: new Map(inventory.nodes.map((node) => [node.name, node.nodeIps])),
      states: kernelStateSource(topo.kernelNodes(1500)),
      retryBackoffMs: 0,
    });
  }

  it("a MASQUERADE's entries are named on its own pairs, after the rule; once repaired, they are not blamed on a later fault", async () => {
    inNetns(n2, "iptables-nft", masquerade);
    try {
      const report = await check();
      const bad = brokenResults(report);
      expect(bad.map((r) => r.pair.id).sort()).toEqual(between(["pod-2-0", "pod-2-1"], ["pod-1-0", "pod-1-1"]).sort());
      for (const r of bad) {
        const codes = r.diagnosis.map((d) => d.code);
        expect(codes[0]).toBe("snat-rule");
        const named = r.diagnosis.find((d) => d.code === "conntrack-nat");
        expect(named?.message).toMatch(new RegExp(`^node-2: conntrack entry \`(tcp|udp) src=${r.pair.src.ip} dst=${r.pair.dst.ip} sport=\\d+ dport=${PORT} reply src=${r.pair.dst.ip} dst=172\\.31\\.0\\.12\``));
      }
    } finally {
      inNetns(n2, "iptables-nft", ["-t", "nat", "-F", "POSTROUTING"]);
    }
    // The repaired fault's entries stay; aged by hand (-t 10 s left: 20 s idle or more), as if the repair were
    // a while ago, so that no run is fast enough to count them as its own.
    expect(natEntries().length).toBeGreaterThan(0);
    inNetns(n2, "conntrack", ["-U", "-s", "10.244.2.2", "-t", "10"], undefined, true);
    inNetns(n2, "conntrack", ["-U", "-s", "10.244.2.3", "-t", "10"], undefined, true);

    ipBatch(n2, ["route add blackhole 10.244.1.2/32"]);
    try {
      const report = await check();
      const bad = brokenResults(report);
      expect(bad.map((r) => r.pair.id).sort()).toEqual([...between(["pod-2-0", "pod-2-1"], ["pod-1-0"]), ...between(["pod-1-0"], ["pod-2-0", "pod-2-1"])].sort());
      for (const r of bad) {
        expect(r.diagnosis[0]).toMatchObject({ code: "blackhole-route", node: "node-2" });
        expect(r.diagnosis.map((d) => d.code)).not.toContain("conntrack-nat");
      }
      // The stale entries were there while the evidence was read.
      expect(natEntries().some((l) => l.includes("dst=10.244.1.2 "))).toBe(true);
    } finally {
      ipBatch(n2, ["route del blackhole 10.244.1.2/32"]);
    }
  }, 90_000);
});
