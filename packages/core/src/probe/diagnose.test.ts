import { describe, expect, it } from "vitest";
import { diagnosePair, type NodeProbeState } from "./diagnose.ts";
import { parseNftRuleset, ruleMatches } from "./firewall.ts";
import { pair } from "./fixtures.test-util.ts";
import type { PairProblem, PairResult } from "./types.ts";

// Captured from `nft -j list ruleset` (nftables 1.0.6) in a scratch namespace, plus a forward drop rule.
const ruleset = {
  nftables: [
    { metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } },
    { table: { family: "ip", name: "fn-tp-fault", handle: 1 } },
    { chain: { family: "ip", table: "fn-tp-fault", name: "post", handle: 1, type: "nat", hook: "postrouting", prio: 100, policy: "accept" } },
    { rule: { family: "ip", table: "fn-tp-fault", chain: "post", handle: 2, expr: [
      { match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: { prefix: { addr: "10.244.1.0", len: 24 } } } },
      { match: { op: "==", left: { payload: { protocol: "ip", field: "daddr" } }, right: { prefix: { addr: "10.244.2.0", len: 24 } } } },
      { snat: { addr: "172.31.0.11" } },
    ] } },
    { chain: { family: "ip", table: "fn-tp-fault", name: "forward", handle: 3, type: "filter", hook: "forward", prio: 0, policy: "accept" } },
    { rule: { family: "ip", table: "fn-tp-fault", chain: "forward", handle: 4, expr: [
      { match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: "10.244.1.2" } },
      { match: { op: "==", left: { payload: { protocol: "ip", field: "daddr" } }, right: "10.244.2.2" } },
      { counter: { packets: 0, bytes: 0 } },
      { drop: null },
    ] } },
    { table: { family: "inet", name: "flatnet", handle: 2 } },
    { chain: { family: "inet", table: "flatnet", name: "post", handle: 1, type: "nat", hook: "postrouting", prio: 100, policy: "accept" } },
    { rule: { family: "inet", table: "flatnet", chain: "post", handle: 2, expr: [
      { match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: { prefix: { addr: "10.244.0.0", len: 16 } } } },
      { match: { op: "!=", left: { payload: { protocol: "ip", field: "daddr" } }, right: { prefix: { addr: "10.244.0.0", len: 16 } } } },
      { masquerade: null },
    ] } },
    { rule: { family: "inet", table: "flatnet", chain: "post", handle: 4, expr: [
      { match: { op: "==", left: { payload: { protocol: "ip6", field: "saddr" } }, right: { prefix: { addr: "fd00:10:244::", len: 56 } } } },
      { match: { op: "!=", left: { payload: { protocol: "ip6", field: "daddr" } }, right: { set: [{ prefix: { addr: "fd00:10:244::", len: 56 } }, "fd00:99::1"] } } },
      { masquerade: null },
    ] } },
  ],
};

describe("parseNftRuleset", () => {
  const rules = parseNftRuleset(ruleset);
  it("keeps drop and address-rewriting rules with their matches and hooks", () => {
    expect(rules.map((r) => [r.where, r.action, r.hook, r.saddr?.cidrs, r.daddr?.negated, r.daddr?.cidrs, r.to])).toEqual([
      ["ip fn-tp-fault post #2", "snat", "postrouting", ["10.244.1.0/24"], false, ["10.244.2.0/24"], "172.31.0.11"],
      ["ip fn-tp-fault forward #4", "drop", "forward", ["10.244.1.2/32"], false, ["10.244.2.2/32"], undefined],
      ["inet flatnet post #2", "masquerade", "postrouting", ["10.244.0.0/16"], true, ["10.244.0.0/16"], undefined],
      ["inet flatnet post #4", "masquerade", "postrouting", ["fd00:10:244::/56"], true, ["fd00:10:244::/56", "fd00:99::1/128"], undefined],
    ]);
  });
  it.each([
    [0, "10.244.1.5", "10.244.2.9", true],
    [0, "10.244.3.5", "10.244.2.9", false],
    [1, "10.244.1.2", "10.244.2.2", true],
    [1, "10.244.1.2", "10.244.2.3", false],
    // flatnet's own masquerade never touches pod-to-pod traffic
    [2, "10.244.1.2", "10.244.2.2", false],
    [2, "10.244.1.2", "192.0.2.1", true],
    [3, "fd00:10:244:1::2", "fd00:10:244:2::2", false],
    [3, "fd00:10:244:1::2", "fd00:99::1", false],
    [3, "fd00:10:244:1::2", "2001:db8::1", true],
    [3, "10.244.1.2", "192.0.2.1", false],
  ])("rule %i matches %s -> %s: %s", (index, src, dst, expected) => {
    expect(ruleMatches(rules[index]!, src, dst)).toBe(expected);
  });
  it.each([[null], [{}], [{ nftables: "x" }], [{ nftables: [{ rule: { expr: "bad" } }, 42, null] }]])("tolerates %j", (doc) => {
    expect(parseNftRuleset(doc)).toEqual([]);
  });
});

const vxlanState = (node: string, n: number, peers: number[]): NodeProbeState => ({
  node,
  reachable: true,
  podCidrs: [`10.244.${n}.0/24`],
  nodeIps: [`172.31.0.${10 + n}`],
  podMtu: 1450,
  underlayMtu: 1500,
  encapOverhead: 50,
  desired: {
    routes: peers.map((p) => ({ dst: `10.244.${p}.0/24`, via: `10.244.${p}.0`, dev: "flatnet.1" })),
    neighbours: peers.map((p) => ({ ip: `10.244.${p}.0`, mac: `02:00:00:00:00:0${p}`, dev: "flatnet.1" })),
    fdb: peers.map((p) => ({ mac: `02:00:00:00:00:0${p}`, dst: `172.31.0.${10 + p}`, dev: "flatnet.1" })),
  },
  actual: {
    routes: peers.map((p) => ({ dst: `10.244.${p}.0/24`, via: `10.244.${p}.0`, dev: "flatnet.1" })),
    neighbours: peers.map((p) => ({ ip: `10.244.${p}.0`, mac: `02:00:00:00:00:0${p}`, dev: "flatnet.1" })),
    fdb: peers.map((p) => ({ mac: `02:00:00:00:00:0${p}`, dst: `172.31.0.${10 + p}`, dev: "flatnet.1" })),
  },
  firewall: [],
});

function failed(problems: PairProblem[], p = pair()): PairResult {
  return { pair: p, verdict: "failed", attempts: 3, problems, nat: { verdict: "unknown", expectedSrc: p.src.ip }, diagnosis: [] };
}

function states(mutate: (s: Map<string, NodeProbeState>) => void = () => {}): Map<string, NodeProbeState> {
  const m = new Map([
    ["node-1", vxlanState("node-1", 1, [2, 3])],
    ["node-2", vxlanState("node-2", 2, [1, 3])],
    ["node-3", vxlanState("node-3", 3, [1, 2])],
  ]);
  mutate(m);
  return m;
}

describe("diagnosePair", () => {
  const unreachable: PairProblem[] = ["tcp-unreachable", "udp-unreachable"];
  it.each<[string, PairProblem[], (s: Map<string, NodeProbeState>) => void, [string, string | undefined, string][]]>([
    ["nothing wrong in state", unreachable, () => {}, [["unexplained", undefined, "no cause found in the state of node-1 and node-2"]]],
    ["route deleted on the sender", unreachable, (s) => { s.get("node-1")!.actual!.routes.shift(); },
      [["missing-route", "node-1", "node-1 has no route to 10.244.2.0/24 (node-2's pod CIDR)"]]],
    ["route deleted on the receiver (reply path)", unreachable, (s) => { s.get("node-2")!.actual!.routes.shift(); },
      [["missing-route", "node-2", "node-2 has no route to 10.244.1.0/24 (node-1's pod CIDR)"]]],
    ["wrong via", unreachable, (s) => { s.get("node-1")!.actual!.routes[0]!.via = "10.244.3.0"; },
      [["wrong-route", "node-1", "node-1 routes 10.244.2.0/24 via 10.244.3.0 dev flatnet.1, expected via 10.244.2.0 dev flatnet.1"]]],
    ["stale VTEP MAC", unreachable, (s) => { s.get("node-1")!.actual!.neighbours[0]!.mac = "02:aa:aa:aa:aa:aa"; },
      [["stale-vtep-mac", "node-1", "VTEP MAC of node-2 is stale on node-1: 10.244.2.0 -> 02:aa:aa:aa:aa:aa, node-2 publishes 02:00:00:00:00:02"]]],
    ["stale VTEP MAC seen without desired state (agent down)", unreachable, (s) => {
        delete s.get("node-1")!.desired;
        s.get("node-2")!.vtepMac = "02:00:00:00:00:02";
        s.get("node-1")!.actual!.neighbours[0]!.mac = "02:aa:aa:aa:aa:aa";
      },
      [["stale-vtep-mac", "node-1", "VTEP MAC of node-2 is stale on node-1: 10.244.2.0 -> 02:aa:aa:aa:aa:aa, node-2's VXLAN device is 02:00:00:00:00:02"]]],
    ["missing neighbour and FDB", unreachable, (s) => { s.get("node-1")!.actual!.neighbours.shift(); s.get("node-1")!.actual!.fdb.shift(); },
      [["missing-vtep-neighbour", "node-1", "node-1 has no neighbour entry for node-2's VTEP 10.244.2.0"],
       ["missing-fdb", "node-1", "node-1 has no FDB entry 02:00:00:00:00:02 -> 172.31.0.12 for node-2"]]],
    ["stale underlay neighbour (host-gw next hop)", unreachable, (s) => {
        s.get("node-2")!.underlayMac = "9a:00:00:00:00:02";
        s.get("node-1")!.actual!.routes[0] = { dst: "10.244.2.0/24", via: "172.31.0.12", dev: "eth0" };
        s.get("node-1")!.desired!.routes[0] = { dst: "10.244.2.0/24", via: "172.31.0.12", dev: "eth0" };
        s.get("node-1")!.underlayNeighbours = [{ ip: "172.31.0.12", mac: "02:00:00:00:00:99" }];
      },
      [["stale-neighbour", "node-1", "node-1's neighbour entry for node-2 (172.31.0.12) is stale: 02:00:00:00:00:99, node-2's underlay MAC is 9a:00:00:00:00:02"]]],
    ["drop rule", unreachable, (s) => { s.get("node-2")!.firewall = parseNftRuleset(ruleset); },
      [["drop-rule", "node-2", "node-2 drops 10.244.1.2 <-> 10.244.2.2 (nft ip fn-tp-fault forward #4)"]]],
    ["SNAT rule", ["nat-violation"], (s) => { s.get("node-1")!.firewall = parseNftRuleset(ruleset); },
      [["snat-rule", "node-1", "node-1 rewrites the source of 10.244.1.2 -> 10.244.2.2: snat to 172.31.0.11 (nft ip fn-tp-fault post #2)"]]],
    ["lowered MTU", ["mtu-tcp-blackhole"], (s) => { s.get("node-2")!.underlayMtu = 1450; },
      [["mtu-below-pod-mtu", "node-2", "path MTU 1400 below pod MTU 1450 on node-2 (underlay MTU 1450, encapsulation 50)"]]],
    ["route MTU below pod MTU with ICMP dropped (PMTUD black hole)", ["mtu-tcp-blackhole", "mtu-udp-blackhole"], (s) => {
        s.get("node-1")!.actual!.routes[0]!.mtu = 1400;
        s.get("node-1")!.firewall = parseNftRuleset({ nftables: [
          { rule: { family: "ip", table: "t", chain: "out", handle: 3, expr: [{ match: { op: "==", left: { payload: { protocol: "icmp", field: "type" } }, right: "destination-unreachable" } }, { drop: null }] } },
          { rule: { family: "ip", table: "t", chain: "o2", handle: 4, expr: [{ match: { op: "==", left: { meta: { key: "l4proto" } }, right: "icmp" } }, { drop: null }] } },
        ] });
      },
      [["mtu-below-pod-mtu", "node-1", "path MTU 1400 below pod MTU 1450 on node-1 (route to 10.244.2.0/24)"],
       ["drop-rule", "node-1", "node-1 drops ICMP (nft ip t out #3): path MTU discovery cannot work"],
       ["drop-rule", "node-1", "node-1 drops ICMP (nft ip t o2 #4): path MTU discovery cannot work"]]],
    ["an ICMP-only drop rule does not explain lost TCP", unreachable, (s) => {
        s.get("node-1")!.firewall = parseNftRuleset({ nftables: [
          { rule: { family: "ip", table: "t", chain: "out", handle: 3, expr: [{ match: { op: "==", left: { payload: { protocol: "icmp", field: "type" } }, right: "destination-unreachable" } }, { drop: null }] } },
        ] });
      },
      [["unexplained", undefined, "no cause found in the state of node-1 and node-2"]]],
    ["nothing in the nodes, but the shared neighbour table overflowed", unreachable, (s) => {
        s.get("node-2")!.neighbourTable = [{ family: "IPv6", overflows: 9 }, { family: "IPv4", overflows: 12, entries: 1024, limit: 1024 }];
      },
      [["neighbour-table-full", undefined, "the kernel's IPv4 neighbour table overflowed 12 times during the run (1024 entries, gc_thresh3 1024): new neighbours cannot be resolved"]]],
    ["a specific cause wins over the shared neighbour table", unreachable, (s) => {
        s.get("node-1")!.actual!.routes.shift();
        s.get("node-1")!.neighbourTable = [{ family: "IPv4", overflows: 3 }];
      },
      [["missing-route", "node-1", "node-1 has no route to 10.244.2.0/24 (node-2's pod CIDR)"]]],
    ["pod IP outside its node's CIDR", unreachable, (s) => { s.get("node-2")!.podCidrs = ["10.244.9.0/24"]; },
      [["pod-ip-outside-cidr", "node-2", "10.244.2.2 is outside node-2's pod CIDR 10.244.9.0/24"]]],
    ["agent down", unreachable, (s) => { s.set("node-2", { node: "node-2", reachable: false, error: "ECONNREFUSED", podCidrs: [], nodeIps: [] }); },
      [["agent-unreachable", "node-2", "the agent of node-2 did not answer (ECONNREFUSED)"]]],
  ])("%s", (_name, problems, mutate, expected) => {
    const out = diagnosePair(failed(problems), states(mutate));
    expect(out.map((d) => [d.code, d.node, d.message])).toEqual(expected);
  });

  it("says nothing about passing pairs", () => {
    expect(diagnosePair({ ...failed([]), verdict: "ok" }, states())).toEqual([]);
    expect(diagnosePair({ ...failed([]), verdict: "flaky" }, states())).toEqual([]);
  });

  it("an inconclusive pair only gets agent findings", () => {
    const r: PairResult = { ...failed(["control-path"]), verdict: "inconclusive" };
    const out = diagnosePair(r, states((s) => { s.set("node-1", { node: "node-1", reachable: false, podCidrs: [], nodeIps: [] }); s.get("node-2")!.actual!.routes = []; }));
    expect(out.map((d) => d.code)).toEqual(["agent-unreachable"]);
  });

  it("does not look for routes on same-node pairs", () => {
    const p = pair("pod-1-0", "node-1", "10.244.1.2", "pod-1-1", "node-1", "10.244.1.3");
    const out = diagnosePair(failed(unreachable, p), states((s) => { s.get("node-1")!.actual!.routes = []; }));
    expect(out.map((d) => d.code)).toEqual(["unexplained"]);
  });
});
