import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProbePlan, probeEventSchema, type PairResult, type ProbeEvent, type ProbeOptions, type ProbeReport } from "@flatnet/core";
import { runProbe, type DialTransport } from "../../apps/agent/src/probe/engine.ts";
import { kernelStateSource } from "../../apps/agent/src/probe/node-state.ts";
import { PROBE_TOKEN_HEADER } from "../../apps/agent/src/probe/dial-policy.ts";
import { ndjsonLines, postJson } from "../../apps/agent/src/http/client.ts";
import { agentTransport, responderTransport } from "../../apps/agent/src/probe/transport.ts";
import { inNetns, ipBatch, isRoot, ProbeTopology } from "./topology.ts";

// Faults injected into a hand-built 3-node x 2-pod host-gw network (namespaces fn-tp-a*): the check must
// report exactly the broken pairs, with the right verdict and diagnosis, and nothing else.

const PORT = 7471;
const POD_MTU = 1500;
const OPTIONS: ProbeOptions = { udpCount: 2, tcpCount: 2, mtuTcpBytes: 16384, podMtu: POD_MTU, timeoutMs: 1000, retries: 1, concurrency: 32 };
const relayServer = fileURLToPath(new URL("./agent-relay-server.ts", import.meta.url));
const TOKEN = "fn-tp-probe-token-0123456789";

const root = isRoot();
if (!root) console.log("probe fault tests skipped: they need root to create network namespaces");

describe.skipIf(!root)("probe engine on a netns network with injected faults", () => {
  const topo = new ProbeTopology("a", 3, 2);

  beforeAll(async () => {
    topo.up();
    await topo.startResponders(PORT, TOKEN);
  }, 60_000);

  afterAll(() => topo.cleanup());

  const direct: DialTransport = responderTransport((src) => ({ socketPath: topo.controlSocket(src.pod) }));

  async function check(transport: DialTransport = direct, ready: (pod: string) => boolean = () => true): Promise<{ report: ProbeReport; events: ProbeEvent[] }> {
    const inventory = topo.inventory(PORT);
    for (const pod of inventory.pods) pod.ready = ready(pod.name);
    const events: ProbeEvent[] = [];
    const report = await runProbe({
      cluster: inventory.cluster,
      plan: buildProbePlan(inventory, { mode: "all-pods" }),
      options: OPTIONS,
      transport,
      nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
      states: kernelStateSource(topo.kernelNodes(POD_MTU)),
      onEvent: (e) => events.push(e),
      retryBackoffMs: 0,
    });
    return { report, events };
  }

  const broken = (report: ProbeReport): PairResult[] => report.results.filter((r) => r.verdict !== "ok" && r.verdict !== "excluded");
  const ids = (results: PairResult[]): string[] => results.map((r) => r.pair.id).sort();
  const pairsBetween = (from: string[], to: string[]): string[] =>
    from.flatMap((s) => to.map((d) => `${s}>${d}/IPv4`)).sort();

  it("a healthy network: every ordered pair ok, NAT-free, with RTT and MTU checks passed", async () => {
    const { report, events } = await check();
    expect(report.summary.line).toBe("0/30 pairs failed (0 NAT violations), 0 excluded");
    expect(report.results).toHaveLength(30);
    for (const r of report.results) {
      expect(r.verdict).toBe("ok");
      expect(r.nat).toEqual({ verdict: "nat-free", observedSrc: r.pair.src.ip, expectedSrc: r.pair.src.ip });
      expect(r.rtt?.samples).toBe(4);
      expect(r.mtu).toEqual({ tcpBytes: 16384, tcpOk: true, udpBytes: 1472, udpOk: true });
    }
    expect(report.results.filter((r) => r.pair.path === "same-node")).toHaveLength(6);
    // Streamed: run-started, one pair-result per pair, run-finished; all valid against the wire schema.
    expect(events.map((e) => e.type)).toEqual(["run-started", ...Array(30).fill("pair-result"), "run-finished"]);
    for (const e of events) expect(probeEventSchema.safeParse(JSON.parse(JSON.stringify(e))).success).toBe(true);
  }, 60_000);

  it("an nftables drop rule on node-2: the pair and its reverse (whose replies it drops) fail, explained by the rule", async () => {
    const n2 = topo.node("node-2").netns;
    inNetns(n2, "nft", ["-f", "-"], [
      "table ip fn-tp-fault {",
      "  chain forward { type filter hook forward priority 0; ip saddr 10.244.1.2 ip daddr 10.244.2.2 drop; }",
      "}",
    ].join("\n"));
    try {
      const { report } = await check();
      const bad = broken(report);
      // The rule also drops the replies of the reverse pair, so both directions are really broken.
      expect(ids(bad)).toEqual(["pod-1-0>pod-2-0/IPv4", "pod-2-0>pod-1-0/IPv4"]);
      for (const r of bad) {
        expect(r.verdict).toBe("failed");
        expect(r.attempts).toBe(2);
        expect(r.problems).toEqual(["tcp-unreachable", "udp-unreachable"]);
        expect(r.diagnosis.map((d) => [d.code, d.node, d.message])).toEqual([
          ["drop-rule", "node-2", `node-2 drops ${r.pair.src.ip} <-> ${r.pair.dst.ip} (nft ip fn-tp-fault forward #2)`],
        ]);
      }
      expect(report.summary.line).toBe("2/30 pairs failed (0 NAT violations), 0 excluded");
    } finally {
      inNetns(n2, "nft", ["delete", "table", "ip", "fn-tp-fault"]);
    }
  }, 60_000);

  it("a SNAT rule on node-1 towards node-3's pods: NAT violations (snat-to-node-ip) on exactly those pairs", async () => {
    const n1 = topo.node("node-1").netns;
    inNetns(n1, "nft", ["-f", "-"], [
      "table ip fn-tp-fault {",
      "  chain post { type nat hook postrouting priority 100; ip saddr 10.244.1.0/24 ip daddr 10.244.3.0/24 snat to 172.31.0.11; }",
      "}",
    ].join("\n"));
    try {
      const { report } = await check();
      const bad = broken(report);
      expect(ids(bad)).toEqual(pairsBetween(["pod-1-0", "pod-1-1"], ["pod-3-0", "pod-3-1"]));
      for (const r of bad) {
        expect(r.verdict).toBe("failed");
        expect(r.problems).toEqual(["nat-violation"]);
        expect(r.nat).toEqual({ verdict: "snat-to-node-ip", observedSrc: "172.31.0.11", expectedSrc: r.pair.src.ip });
        // The rule, then the conntrack entry of this run's flow that shows the NAT it made.
        expect(r.diagnosis.map((d) => [d.code, d.node])).toEqual([["snat-rule", "node-1"], ["conntrack-nat", "node-1"]]);
        expect(r.diagnosis[0]!.message).toBe(`node-1 rewrites the source of ${r.pair.src.ip} -> ${r.pair.dst.ip}: snat to 172.31.0.11 (nft ip fn-tp-fault post #2)`);
      }
      expect(report.summary.line).toBe("4/30 pairs failed (4 NAT violations), 0 excluded");
    } finally {
      inNetns(n1, "nft", ["delete", "table", "ip", "fn-tp-fault"]);
    }
  }, 60_000);

  it("a deleted route on node-1: both directions between node-1 and node-2 fail, named as the missing route", async () => {
    const n1 = topo.node("node-1").netns;
    ipBatch(n1, ["route del 10.244.2.0/24"]);
    try {
      const { report } = await check();
      const bad = broken(report);
      expect(ids(bad)).toEqual([...pairsBetween(["pod-1-0", "pod-1-1"], ["pod-2-0", "pod-2-1"]), ...pairsBetween(["pod-2-0", "pod-2-1"], ["pod-1-0", "pod-1-1"])].sort());
      for (const r of bad) {
        expect(r.verdict).toBe("failed");
        expect(r.diagnosis.map((d) => [d.code, d.node, d.message])).toEqual([
          ["missing-route", "node-1", "node-1 has no route to 10.244.2.0/24 (node-2's pod CIDR)"],
        ]);
      }
    } finally {
      ipBatch(n1, ["route add 10.244.2.0/24 via 172.31.0.12 dev eth0 proto 77"]);
    }
  }, 60_000);

  it("a lowered path MTU on node-1 with ICMP filtered: an MTU black hole from node-1's pods, small probes still pass", async () => {
    const n1 = topo.node("node-1").netns;
    try {
      ipBatch(n1, ["route replace 10.244.2.0/24 via 172.31.0.12 dev eth0 proto 77 mtu 1400"]);
      inNetns(n1, "nft", ["-f", "-"], [
        "table ip fn-tp-fault {",
        "  chain out { type filter hook output priority 0; icmp type destination-unreachable drop; }",
        "}",
      ].join("\n"));
      const { report } = await check();
      const bad = broken(report);
      expect(ids(bad)).toEqual(pairsBetween(["pod-1-0", "pod-1-1"], ["pod-2-0", "pod-2-1"]));
      for (const r of bad) {
        expect(r.verdict).toBe("failed");
        expect(r.problems).toEqual(["mtu-tcp-blackhole", "mtu-udp-blackhole"]);
        expect(r.nat.verdict).toBe("nat-free");
        expect(r.diagnosis.map((d) => [d.code, d.node, d.message])).toEqual([
          ["mtu-below-pod-mtu", "node-1", "path MTU 1400 below pod MTU 1500 on node-1 (route to 10.244.2.0/24)"],
          ["drop-rule", "node-1", "node-1 drops ICMP (nft ip fn-tp-fault out #2): path MTU discovery cannot work"],
        ]);
      }
      expect(report.summary.mtuFailures).toBe(4);
    } finally {
      inNetns(n1, "nft", ["delete", "table", "ip", "fn-tp-fault"], undefined, true);
      ipBatch(n1, ["route replace 10.244.2.0/24 via 172.31.0.12 dev eth0 proto 77"]);
    }
  }, 60_000);

  it("a stale neighbour entry for node-2 on node-1: traffic between them fails, the stale MAC is named", async () => {
    const n1 = topo.node("node-1").netns;
    const mac = JSON.parse(inNetns(topo.node("node-2").netns, "ip", ["-j", "link", "show", "dev", "eth0"]))[0].address as string;
    ipBatch(n1, ["neigh replace 172.31.0.12 lladdr 02:00:00:00:00:99 dev eth0 nud permanent"]);
    try {
      const { report } = await check();
      const bad = broken(report);
      expect(ids(bad)).toEqual([...pairsBetween(["pod-1-0", "pod-1-1"], ["pod-2-0", "pod-2-1"]), ...pairsBetween(["pod-2-0", "pod-2-1"], ["pod-1-0", "pod-1-1"])].sort());
      for (const r of bad) {
        expect(r.verdict).toBe("failed");
        expect(r.diagnosis.map((d) => [d.code, d.node, d.message])).toEqual([
          ["stale-neighbour", "node-1", `node-1's neighbour entry for node-2 (172.31.0.12) is stale: 02:00:00:00:00:99, node-2's underlay MAC is ${mac}`],
        ]);
      }
    } finally {
      ipBatch(n1, ["neigh del 172.31.0.12 dev eth0"]);
    }
  }, 60_000);

  it("a pod that is not Ready: its pairs are excluded, not failed", async () => {
    const { report } = await check(direct, (pod) => pod !== "pod-3-1");
    expect(report.summary.line).toBe("0/20 pairs failed (0 NAT violations), 10 excluded");
    expect(report.plan.excluded).toEqual([{ kind: "pod", name: "pod-3-1", node: "node-3", reason: "pod pod-3-1 is not Ready" }]);
  }, 60_000);

  describe("through the agents (fan-out relay, no exec)", () => {
    // Sibling sockets <dir>/<node>.sock: the only agents a run may fan out to.
    const socket = (node: string): string => join(topo.dir, `${node}.sock`);
    beforeAll(async () => {
      await Promise.all(topo.nodes.map((n) => topo.startProcess(`agent-${n.name}`, n.netns, [relayServer, n.name, n.netns, socket(n.name)])));
    }, 60_000);

    const viaAgents = agentTransport((node) => ({ socketPath: socket(node) }), undefined, TOKEN);

    it("every pair passes when each node's agent relays to its own pods", async () => {
      const { report } = await check(viaAgents);
      expect(report.summary.line).toBe("0/30 pairs failed (0 NAT violations), 0 excluded");
    }, 60_000);

    it("one agent asked for the whole run fans out to the others and streams NDJSON events", async () => {
      const inventory = topo.inventory(PORT);
      const agents = Object.fromEntries(topo.nodes.map((n) => [n.name, { socketPath: socket(n.name) }]));
      const response = await postJson({ socketPath: socket("node-1") }, "/v1/probe/run", { inventory, agents, options: OPTIONS }, 60_000, { [PROBE_TOKEN_HEADER]: TOKEN });
      expect(response.statusCode).toBe(200);
      const events: ProbeEvent[] = [];
      for await (const e of ndjsonLines(response, (v) => probeEventSchema.parse(v) as ProbeEvent)) events.push(e);
      expect(events[0]!.type).toBe("run-started");
      expect(events.filter((e) => e.type === "pair-result")).toHaveLength(30);
      const last = events.at(-1)!;
      expect(last.type === "run-finished" && last.report.summary.line).toBe("0/30 pairs failed (0 NAT violations), 0 excluded");
    }, 60_000);

    it("a bad run request gets a problem+json answer naming the field", async () => {
      const response = await postJson({ socketPath: socket("node-1") }, "/v1/probe/run", { inventory: { nodes: 3 } }, 5_000);
      expect(response.statusCode).toBe(400);
      expect(response.headers["content-type"]).toBe("application/problem+json");
      let text = "";
      for await (const chunk of response) text += chunk;
      expect(JSON.parse(text).detail).toMatch(/^request body is invalid at "inventory\.cluster"/);
    });

    it("a dial relayed to a pod of another node is refused with a problem naming both nodes", async () => {
      const src = { pod: "pod-2-0", node: "node-2", ip: "10.244.2.2", port: PORT };
      const request = { v: 1, runId: "r", options: OPTIONS, targets: [] };
      const response = await postJson({ socketPath: socket("node-1") }, "/v1/probe/dial", { src, request }, 5_000);
      expect(response.statusCode).toBe(400);
      let text = "";
      for await (const chunk of response) text += chunk;
      expect(JSON.parse(text).detail).toBe("pod pod-2-0 is on node node-2; this agent serves node node-1");
    });

    it.each([
      ["a socket path that is not a sibling agent's", { socketPath: "/run/containerd/containerd.sock" }],
      ["a host", { host: "169.254.169.254", port: 80 }],
    ])("a run naming %s as an agent is refused before anything is dialled (issue 14.10)", async (_, endpoint) => {
      const inventory = topo.inventory(PORT);
      const response = await postJson({ socketPath: socket("node-1") }, "/v1/probe/run", { inventory, agents: { "node-2": endpoint }, options: OPTIONS }, 5_000);
      expect(response.statusCode).toBe(400);
      let text = "";
      for await (const chunk of response) text += chunk;
      expect(JSON.parse(text).detail).toBe(
        `agents["node-2"] is ${JSON.stringify(endpoint)}; a run fans out only to this agent's sibling sockets, here {"socketPath":${JSON.stringify(socket("node-2"))}}`,
      );
    });

    it("a relayed dial without the probe token is refused by the pod (issue 14.1)", async () => {
      const src = { pod: "pod-1-0", node: "node-1", ip: "10.244.1.2", port: PORT };
      const request = { v: 1, runId: "r", options: OPTIONS, targets: [{ pairId: "p", ip: "10.244.2.2", port: PORT }] };
      const response = await postJson({ socketPath: socket("node-1") }, "/v1/probe/dial", { src, request }, 5_000);
      expect(response.statusCode).toBe(502);
      let text = "";
      for await (const chunk of response) text += chunk;
      expect(JSON.parse(text).detail).toMatch(/answered HTTP 401: POST \/v1\/dial needs the orchestrator's probe token in the x-flatnet-probe-token header$/);
    });

    it("a stopped agent: the pairs it would send are inconclusive (control path), never failed", async () => {
      await topo.stopProcess("agent-node-3");
      const { report } = await check(viaAgents);
      const bad = broken(report);
      expect(ids(bad)).toEqual(pairsBetween(["pod-3-0", "pod-3-1"], ["pod-1-0", "pod-1-1", "pod-2-0", "pod-2-1", "pod-3-0", "pod-3-1"]).filter((id) => !/^(pod-3-\d)>\1\//.test(id)));
      for (const r of bad) {
        expect(r.verdict).toBe("inconclusive");
        expect(r.problems).toEqual(["control-path"]);
        expect(r.diagnosis.map((d) => [d.code, d.node])).toEqual([["agent-unreachable", "node-3"]]);
      }
      expect(report.summary.line).toBe("0/30 pairs failed (0 NAT violations), 0 excluded, 10 inconclusive");
    }, 60_000);
  });
});
