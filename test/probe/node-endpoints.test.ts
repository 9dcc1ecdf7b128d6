import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProbePlan, probeReportSchema, type PairResult, type ProbeOptions, type ProbeReport } from "@flatnet/core";
import { runProbe, type DialTransport } from "../../apps/agent/src/probe/engine.ts";
import { kernelStateSource } from "../../apps/agent/src/probe/node-state.ts";
import { runsInNetns, startNodeResponder } from "../../apps/agent/src/probe/node-responder.ts";
import { responderTransport } from "../../apps/agent/src/probe/transport.ts";
import { inNetns, ipBatch, isRoot, ProbeTopology } from "./topology.ts";

// Node endpoints (issue 6.1) on a hand-built 3-node x 1-pod host-gw network (namespaces fn-tn-a*): each node runs
// its own responder the way the agent does (node identity, on its underlay IP), node -> remote pod and
// pod -> remote node pairs are probed, and NAT on a node's own traffic or on pod -> node traffic is caught.

const PORT = 7471;
const POD_MTU = 1500;
const OPTIONS: ProbeOptions = { udpCount: 2, tcpCount: 1, mtuTcpBytes: 16384, podMtu: POD_MTU, timeoutMs: 1000, retries: 1, concurrency: 8 };
const nodeMain = fileURLToPath(new URL("./node-responder-main.ts", import.meta.url));

const root = isRoot();
if (!root) console.log("node endpoint tests skipped: they need root to create network namespaces");

describe.skipIf(!root)("node endpoints: node -> remote pod, pod -> remote node", () => {
  const topo = new ProbeTopology("a", 3, 1, "fn-tn-");
  const nodeSocket = (node: string): string => `${topo.dir}/${node}.probe.sock`;

  beforeAll(async () => {
    topo.up();
    await topo.startResponders(PORT);
    await Promise.all(
      topo.nodes.map((n) =>
        topo.startProcess(`node:${n.name}`, n.netns, [
          nodeMain,
          JSON.stringify({ netns: n.netns, node: n.name, underlayIps: [n.ip], podCidrs: [n.podCidr], port: PORT, controlSocket: nodeSocket(n.name) }),
        ]),
      ),
    );
  }, 90_000);

  afterAll(() => topo.cleanup());

  const transport: DialTransport = responderTransport((src) =>
    src.kind === "node" ? { socketPath: nodeSocket(src.node) } : { socketPath: topo.controlSocket(src.pod) },
  );

  async function check(): Promise<ProbeReport> {
    const inventory = topo.inventory(PORT);
    return runProbe({
      cluster: inventory.cluster,
      plan: buildProbePlan(inventory, { mode: "all-pods", includeNodes: true }),
      options: OPTIONS,
      transport,
      nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
      states: kernelStateSource(topo.kernelNodes(POD_MTU)),
      retryBackoffMs: 0,
    });
  }

  const broken = (report: ProbeReport): PairResult[] => report.results.filter((r) => r.verdict !== "ok");
  const ids = (results: PairResult[]): string[] => results.map((r) => r.pair.id).sort();

  it("refuses to open a node's sockets from a process outside the node's namespace", async () => {
    const netns = topo.node("node-1").netns;
    expect(await runsInNetns(netns)).toBe(false);
    const started = await startNodeResponder({ netns, node: "node-1", underlayIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24"], port: PORT });
    expect(started.responder).toBeUndefined();
    expect(started.reason).toContain(`does not run in network namespace "${netns}"`);
    expect((await startNodeResponder({ netns, node: "node-1", underlayIps: [], podCidrs: [], port: PORT })).reason).toBe("the node has no underlay IP to listen on");
  });

  it("healthy: every node pair ok; a pod's source at a node is its pod IP, a node's source at a pod is its node IP", async () => {
    const report = await check();
    // 3 pods: 6 pod pairs; 3 nodes x 2 remote pods, each direction: 12 node pairs.
    expect(report.summary.line).toBe("0/18 pairs failed (0 NAT violations), 0 excluded");
    const nodePairs = report.results.filter((r) => r.pair.kind !== undefined);
    expect(nodePairs).toHaveLength(12);
    for (const r of nodePairs) {
      expect(r.verdict).toBe("ok");
      expect(r.mtu).toEqual({ tcpBytes: 16384, tcpOk: true, udpBytes: 1472, udpOk: true });
      if (r.pair.kind === "node-pod") {
        const node = topo.node(r.pair.src.node);
        // host-gw: the route to a remote pod CIDR leaves through eth0, so the kernel picks the node's underlay IP.
        expect(r.nat).toEqual({ verdict: "nat-free", observedSrc: node.ip, expectedSrc: node.ip, expectedSrcs: [node.ip, `10.244.${node.index}.1`, `10.244.${node.index}.0`] });
      } else {
        expect(r.pair.kind).toBe("pod-node");
        expect(r.nat).toEqual({ verdict: "nat-free", observedSrc: r.pair.src.ip, expectedSrc: r.pair.src.ip });
        expect(r.pair.dst).toMatchObject({ pod: `node:${r.pair.dst.node}`, kind: "node", ip: topo.node(r.pair.dst.node).ip });
      }
    }
    expect(probeReportSchema.safeParse(JSON.parse(JSON.stringify(report))).success).toBe(true);
  }, 60_000);

  it("SNAT of node-1's own traffic to another address: exactly node-1 -> remote pods fail, snat-other, the rule named", async () => {
    const n1 = topo.node("node-1").netns;
    // A second address on node-1's underlay, so the rewritten packets' replies still come back.
    ipBatch(n1, ["addr add 172.31.0.111/24 dev eth0"]);
    inNetns(n1, "nft", ["-f", "-"], [
      "table ip fn-tn-fault {",
      "  chain post { type nat hook postrouting priority 100; ip saddr 172.31.0.11 ip daddr 10.244.0.0/16 snat to 172.31.0.111; }",
      "}",
    ].join("\n"));
    try {
      const report = await check();
      const bad = broken(report);
      expect(ids(bad)).toEqual(["node:node-1>pod-2-0/IPv4", "node:node-1>pod-3-0/IPv4"]);
      for (const r of bad) {
        expect(r.verdict).toBe("failed");
        expect(r.problems).toEqual(["nat-violation"]);
        expect(r.nat).toEqual({ verdict: "snat-other", observedSrc: "172.31.0.111", expectedSrc: "172.31.0.11", expectedSrcs: ["172.31.0.11", "10.244.1.1", "10.244.1.0"] });
        expect(r.error).toContain("expected one of node-1's own addresses (172.31.0.11, 10.244.1.1, 10.244.1.0)");
        // The rule first, then this probe's own conntrack entry showing the rewrite that already happened.
        expect(r.diagnosis.map((d) => [d.code, d.node])).toEqual([["snat-rule", "node-1"], ["conntrack-nat", "node-1"]]);
        expect(r.diagnosis[0]?.message).toBe(`node-1 rewrites the source of 172.31.0.11 -> ${r.pair.dst.ip}: snat to 172.31.0.111 (nft ip fn-tn-fault post #2)`);
        expect(r.diagnosis[1]?.message).toContain("172.31.0.11 was rewritten to 172.31.0.111 (SNAT)");
      }
      expect(report.summary.line).toBe("2/18 pairs failed (2 NAT violations), 0 excluded");
    } finally {
      inNetns(n1, "nft", ["delete", "table", "ip", "fn-tn-fault"], undefined, true);
      ipBatch(n1, ["addr del 172.31.0.111/24 dev eth0"]);
    }
  }, 60_000);

  it("masquerade of pod -> node traffic on node-2: exactly pod-2-0 -> remote nodes fail, snat-to-node-ip", async () => {
    const n2 = topo.node("node-2").netns;
    inNetns(n2, "nft", ["-f", "-"], [
      "table ip fn-tn-fault {",
      "  chain post { type nat hook postrouting priority 100; ip saddr 10.244.0.0/16 ip daddr 172.31.0.0/24 masquerade; }",
      "}",
    ].join("\n"));
    try {
      const report = await check();
      const bad = broken(report);
      expect(ids(bad)).toEqual(["pod-2-0>node:node-1/IPv4", "pod-2-0>node:node-3/IPv4"]);
      for (const r of bad) {
        expect(r.verdict).toBe("failed");
        expect(r.problems).toEqual(["nat-violation"]);
        expect(r.nat).toEqual({ verdict: "snat-to-node-ip", observedSrc: "172.31.0.12", expectedSrc: "10.244.2.2" });
        expect(r.diagnosis.map((d) => [d.code, d.node])).toEqual([["snat-rule", "node-2"], ["conntrack-nat", "node-2"]]);
      }
    } finally {
      inNetns(n2, "nft", ["delete", "table", "ip", "fn-tn-fault"], undefined, true);
    }
  }, 60_000);

  it("node-3's responder stopped: pairs from node-3 are inconclusive, pairs to it fail; pod pairs unaffected", async () => {
    await topo.stopProcess("node:node-3");
    const report = await check();
    const bad = broken(report);
    expect(ids(bad)).toEqual([
      "node:node-3>pod-1-0/IPv4",
      "node:node-3>pod-2-0/IPv4",
      "pod-1-0>node:node-3/IPv4",
      "pod-2-0>node:node-3/IPv4",
    ]);
    for (const r of bad) {
      if (r.pair.src.kind === "node") expect(r.verdict).toBe("inconclusive");
      else {
        expect(r.verdict).toBe("failed");
        expect(r.problems).toContain("tcp-unreachable");
      }
    }
  }, 60_000);
});
