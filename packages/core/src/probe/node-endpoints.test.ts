import { describe, expect, it } from "vitest";
import { cidrFirstHost, cidrNetworkAddress } from "./address.ts";
import { diagnosePair } from "./diagnose.ts";
import { goodDial, reply } from "./fixtures.test-util.ts";
import { buildProbePlan, nodeEndpoint, type ProbeInventory } from "./plan.ts";
import { probeReportSchema } from "./schema.ts";
import type { DialResult, NodeProbeState, ProbePair } from "./index.ts";
import { combineAttempts, evaluateAttempt } from "./verdict.ts";

// Node endpoints (issue 6.1): a node's own traffic to remote pods, and pods to remote nodes.

function inventory(nodes: number, podsPerNode: number, dual = false): ProbeInventory {
  const inv: ProbeInventory = { cluster: { name: "t", source: "fixture" }, nodes: [], pods: [] };
  for (let n = 1; n <= nodes; n++) {
    const nodeIps = [`172.31.0.${10 + n}`];
    const podCidrs = [`10.244.${n}.0/24`];
    if (dual) {
      nodeIps.push(`fd00:31::${10 + n}`);
      podCidrs.push(`fd00:10:244:${n}::/64`);
    }
    inv.nodes.push({ name: `node-${n}`, podCidrs, nodeIps });
    for (let p = 0; p < podsPerNode; p++) {
      const ips = [`10.244.${n}.${p + 2}`];
      if (dual) ips.push(`fd00:10:244:${n}::${p + 2}`);
      inv.pods.push({ name: `pod-${n}-${p}`, node: `node-${n}`, ips });
    }
  }
  return inv;
}

describe("cidrFirstHost", () => {
  it.each([
    ["10.244.1.0/24", "10.244.1.1"],
    ["10.244.1.77/24", "10.244.1.1"],
    ["10.0.0.0/8", "10.0.0.1"],
    ["10.0.0.0/30", "10.0.0.1"],
    ["10.0.0.0/31", undefined],
    ["fd00:10:244:1::/64", "fd00:10:244:1::1"],
    ["fd00::/128", undefined],
    ["not-a-cidr/24", undefined],
    ["10.0.0.0", undefined],
  ] as const)("%s -> %s", (cidr, first) => {
    expect(cidrFirstHost(cidr)).toBe(first);
  });

  it.each([
    ["10.244.1.77/24", "10.244.1.0"],
    ["10.0.0.5/32", "10.0.0.5"],
    ["fd00:10:244:1::9/64", "fd00:10:244:1::"],
    ["10.0.0.0/33", undefined],
    ["x/8", undefined],
  ] as const)("network address of %s -> %s", (cidr, network) => {
    expect(cidrNetworkAddress(cidr)).toBe(network);
  });
});

describe("buildProbePlan with includeNodes", () => {
  it.each([
    // nodes, pods per node, dual, expected pairs: pod pairs + 2 x nodes x remote pods per family
    [1, 2, false, 2],
    [2, 1, false, 2 + 4],
    [3, 2, false, 30 + 2 * 3 * 4],
    [2, 2, true, 2 * (12 + 2 * 2 * 2)],
  ])("%i nodes x %i pods (dual %s) -> %i pairs", (nodes, pods, dual, expected) => {
    const plan = buildProbePlan(inventory(nodes, pods, dual), { mode: "all-pods", includeNodes: true });
    expect(plan.pairs).toHaveLength(expected);
    expect(new Set(plan.pairs.map((p) => p.id)).size).toBe(expected);
    // Never a node with its own pods, and no pair without a kind beyond pod-to-pod.
    for (const p of plan.pairs.filter((x) => x.kind === "node-pod" || x.kind === "pod-node")) {
      expect(p.src.node).not.toBe(p.dst.node);
      expect(p.path).toBe("cross-node");
    }
  });

  it("is off by default: the plan of a caller that does not ask is unchanged", () => {
    const plan = buildProbePlan(inventory(2, 1), { mode: "all-pods" });
    expect(plan.pairs.every((p) => p.kind === undefined && p.src.kind === undefined && p.dst.kind === undefined)).toBe(true);
  });

  it("node endpoints: probed at the node IP, accepted from node IPs and the bridge gateway, per family", () => {
    const plan = buildProbePlan(inventory(2, 1, true), { mode: "all-pods", includeNodes: true });
    const v4 = plan.pairs.find((p) => p.id === "node:node-1>pod-2-0/IPv4") as ProbePair;
    expect(v4.kind).toBe("node-pod");
    expect(v4.src).toEqual({ pod: "node:node-1", node: "node-1", ip: "172.31.0.11", port: 7471, kind: "node", sourceIps: ["172.31.0.11", "10.244.1.1", "10.244.1.0"] });
    expect(v4.dst.ip).toBe("10.244.2.2");
    const v6 = plan.pairs.find((p) => p.id === "pod-2-0>node:node-1/IPv6") as ProbePair;
    expect(v6.kind).toBe("pod-node");
    expect(v6.dst).toMatchObject({ pod: "node:node-1", ip: "fd00:31::11", kind: "node", sourceIps: ["fd00:31::11", "fd00:10:244:1::1", "fd00:10:244:1::"] });
    expect(v6.src.ip).toBe("fd00:10:244:2::2");
  });

  it("explicit hostIps (e.g. a VTEP address) replace the gateway default; a node without an IP of the family has no endpoint", () => {
    expect(nodeEndpoint({ name: "n", podCidrs: ["10.244.1.0/24"], nodeIps: ["172.31.0.11"], hostIps: ["10.244.1.0"], probePort: 9000 }, "IPv4")).toEqual({
      pod: "node:n", node: "n", ip: "172.31.0.11", port: 9000, kind: "node", sourceIps: ["172.31.0.11", "10.244.1.0"],
    });
    expect(nodeEndpoint({ name: "n", podCidrs: ["10.244.1.0/24"], nodeIps: ["172.31.0.11"] }, "IPv6")).toBeUndefined();
  });

  it("a node not Ready excludes its node pairs; a pod not Ready excludes its node pairs", () => {
    const inv = inventory(3, 1);
    (inv.nodes[2] as { ready?: boolean }).ready = false;
    (inv.pods[1] as { ready?: boolean }).ready = false; // pod-2-0
    const plan = buildProbePlan(inv, { mode: "all-pods", includeNodes: true });
    const nodePairs = plan.pairs.filter((p) => p.kind !== undefined);
    const active = nodePairs.filter((p) => p.excluded === undefined).map((p) => p.id).sort();
    expect(active).toEqual(["node:node-2>pod-1-0/IPv4", "pod-1-0>node:node-2/IPv4"]);
    expect(plan.pairs.find((p) => p.id === "node:node-3>pod-1-0/IPv4")?.excluded).toBe("node node-3 is not Ready");
    expect(plan.pairs.find((p) => p.id === "node:node-1>pod-2-0/IPv4")?.excluded).toBe("pod pod-2-0 is not Ready");
  });

  it("node-pairs mode: each node endpoint pairs with its peers' representatives, in and out", () => {
    const plan = buildProbePlan(inventory(4, 2), { mode: "node-pairs", peersPerNode: 2, includeNodes: true });
    const nodePairs = plan.pairs.filter((p) => p.kind !== undefined);
    expect(nodePairs).toHaveLength(4 * 2 * 2);
    for (let n = 1; n <= 4; n++) {
      expect(nodePairs.filter((p) => p.src.pod === `node:node-${n}`)).toHaveLength(2);
      expect(nodePairs.filter((p) => p.dst.pod === `node:node-${n}`)).toHaveLength(2);
    }
  });
});

describe("verdicts of node pairs", () => {
  const plan = buildProbePlan(inventory(2, 1), { mode: "all-pods", includeNodes: true });
  const nodeToPod = plan.pairs.find((p) => p.id === "node:node-1>pod-2-0/IPv4") as ProbePair;
  const podToNode = plan.pairs.find((p) => p.id === "pod-2-0>node:node-1/IPv4") as ProbePair;
  const dialSeen = (p: ProbePair, observed: string): DialResult => {
    const d = goodDial(p);
    return { ...d, tcp: { ...d.tcp!, reply: reply(p, observed) }, udp: { ...d.udp!, reply: reply(p, observed) } };
  };

  it.each([
    // pair, observed source, NAT verdict, passes
    ["node->pod from its node IP", "n2p", "172.31.0.11", "nat-free", true],
    ["node->pod from its bridge gateway", "n2p", "10.244.1.1", "nat-free", true],
    ["node->pod from its VTEP address (vxlan)", "n2p", "10.244.1.0", "nat-free", true],
    ["node->pod from a pod of its own", "n2p", "10.244.1.2", "snat-other", false],
    ["node->pod mapped node IP", "n2p", "::ffff:172.31.0.11", "nat-free", true],
    ["node->pod SNAT to another address", "n2p", "172.31.0.99", "snat-other", false],
    ["node->pod SNAT to the peer's IP", "n2p", "172.31.0.12", "snat-other", false],
    ["pod->node from the pod IP", "p2n", "10.244.2.2", "nat-free", true],
    ["pod->node masqueraded to its node IP", "p2n", "172.31.0.12", "snat-to-node-ip", false],
    ["pod->node from the pod's gateway", "p2n", "10.244.2.1", "snat-other", false],
  ] as const)("%s: saw %s -> %s", (_name, which, observed, verdict, pass) => {
    const p = which === "n2p" ? nodeToPod : podToNode;
    const senderNodeIps = which === "n2p" ? ["172.31.0.11"] : ["172.31.0.12"];
    const outcome = evaluateAttempt(p, dialSeen(p, observed), senderNodeIps);
    expect(outcome.nat.verdict).toBe(verdict);
    expect(outcome.pass).toBe(pass);
    expect(outcome.problems.includes("nat-violation")).toBe(!pass);
    if (which === "n2p") expect(outcome.nat.expectedSrcs).toEqual(["172.31.0.11", "10.244.1.1", "10.244.1.0"]);
    else expect(outcome.nat.expectedSrcs).toBeUndefined();
  });

  it("a node sender's NAT error names every accepted source", () => {
    const outcome = evaluateAttempt(nodeToPod, dialSeen(nodeToPod, "172.31.0.99"), ["172.31.0.11"]);
    expect(outcome.error).toContain("responder saw 172.31.0.99 (snat-other), expected one of node-1's own addresses (172.31.0.11, 10.244.1.1, 10.244.1.0)");
  });

  it("the node responder's identity must be the node's: a pod answering at the node IP is wrong-responder", () => {
    const d = goodDial(podToNode);
    const wrong = reply(podToNode, podToNode.src.ip, { responder: { pod: "pod-1-0", node: "node-1", podIps: ["10.244.1.2"], nodePodCidrs: [] } });
    const outcome = evaluateAttempt(podToNode, { ...d, tcp: { ...d.tcp!, reply: wrong }, udp: { ...d.udp!, reply: wrong } }, ["172.31.0.12"]);
    expect(outcome.problems).toContain("wrong-responder");
  });

  it("reports with node pairs still parse with the report schema; excluded node pairs keep expectedSrcs", () => {
    const excluded = combineAttempts({ ...nodeToPod, excluded: "node node-1 is not Ready" }, []);
    expect(excluded.nat).toEqual({ verdict: "unknown", expectedSrc: "172.31.0.11", expectedSrcs: ["172.31.0.11", "10.244.1.1", "10.244.1.0"] });
    const ok = combineAttempts(nodeToPod, [evaluateAttempt(nodeToPod, goodDial(nodeToPod), [])]);
    const parsed = probeReportSchema.shape.results.element.parse(ok);
    expect(parsed.pair.src.kind).toBe("node");
    expect(parsed.pair.kind).toBe("node-pod");
    expect(parsed.nat.expectedSrcs).toEqual(["172.31.0.11", "10.244.1.1", "10.244.1.0"]);
  });
});

describe("diagnosis of node pairs", () => {
  const plan = buildProbePlan(inventory(2, 1), { mode: "all-pods", includeNodes: true });
  const nodeToPod = plan.pairs.find((p) => p.id === "node:node-1>pod-2-0/IPv4") as ProbePair;
  const state = (node: string, n: number, routes: { dst: string; via: string; dev: string }[]): NodeProbeState => ({
    node,
    reachable: true,
    podCidrs: [`10.244.${n}.0/24`],
    nodeIps: [`172.31.0.${10 + n}`],
    actual: { routes, neighbours: [], fdb: [] },
    desired: { routes: [{ dst: `10.244.${3 - n}.0/24`, via: `172.31.0.${13 - n}`, dev: "eth0" }], neighbours: [], fdb: [] },
  });

  it("a node's missing route to a remote pod CIDR is named; the node IP is not called outside the pod CIDR", () => {
    const result = combineAttempts(nodeToPod, [
      evaluateAttempt(nodeToPod, { pairId: nodeToPod.id, controlOk: true, tcp: { ok: false, rttMs: [], error: "timeout" } }, []),
    ]);
    const states = new Map([
      ["node-1", state("node-1", 1, [])],
      ["node-2", state("node-2", 2, [{ dst: "10.244.1.0/24", via: "172.31.0.11", dev: "eth0" }])],
    ]);
    const codes = diagnosePair(result, states).map((d) => `${d.code}:${d.node}`);
    expect(codes).toEqual(["missing-route:node-1"]);
  });

  it("pod -> node masquerade: only the sending node's postrouting rule is named, not the receiving node's identical one", () => {
    const podToNode = plan.pairs.find((p) => p.id === "pod-2-0>node:node-1/IPv4") as ProbePair;
    const d = goodDial(podToNode);
    const seen = reply(podToNode, "172.31.0.12");
    const result = combineAttempts(podToNode, [evaluateAttempt(podToNode, { ...d, tcp: { ...d.tcp!, reply: seen }, udp: { ...d.udp!, reply: seen } }, ["172.31.0.12"])]);
    const masquerade = {
      family: "inet", table: "flatnet", chain: "postrouting", hook: "postrouting", action: "masquerade" as const,
      saddr: { negated: false, cidrs: ["10.244.0.0/16"] }, daddr: { negated: true, cidrs: ["10.244.0.0/16"] }, where: "inet flatnet postrouting #4",
    };
    const states = new Map([
      ["node-1", { ...state("node-1", 1, []), firewall: [masquerade] }],
      ["node-2", { ...state("node-2", 2, []), firewall: [masquerade] }],
    ]);
    expect(diagnosePair(result, states).map((x) => `${x.code}:${x.node}`)).toEqual(["snat-rule:node-2"]);
  });

  it("a rule naming the node's VTEP or gateway source (not its node IP) is still found", () => {
    const d = goodDial(nodeToPod);
    const seen = reply(nodeToPod, "172.31.0.111");
    const result = combineAttempts(nodeToPod, [evaluateAttempt(nodeToPod, { ...d, tcp: { ...d.tcp!, reply: seen }, udp: { ...d.udp!, reply: seen } }, [])]);
    const snat = {
      family: "ip", table: "f", chain: "post", hook: "postrouting", action: "snat" as const, to: "172.31.0.111",
      saddr: { negated: false, cidrs: ["10.244.1.0/32"] }, daddr: { negated: false, cidrs: ["10.244.0.0/16"] }, where: "ip f post #2",
    };
    const states = new Map([
      ["node-1", { ...state("node-1", 1, []), firewall: [snat] }],
      ["node-2", state("node-2", 2, [])],
    ]);
    expect(diagnosePair(result, states).map((x) => [x.code, x.node, x.message])).toEqual([
      ["snat-rule", "node-1", "node-1 rewrites the source of 10.244.1.0 -> 10.244.2.2: snat to 172.31.0.111 (nft ip f post #2)"],
    ]);
  });
});
