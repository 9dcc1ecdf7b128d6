import { describe, expect, it } from "vitest";
import type { NodeProbeState } from "../probe/diagnose.ts";
import { pair } from "../probe/fixtures.test-util.ts";
import type { PairProblem, PairResult, ProbePair } from "../probe/types.ts";
import type { NodeEvidence, RouteLookup } from "./evidence.ts";
import { parseConntrack } from "./conntrack.ts";
import { parseIptablesSave } from "./iptables-save.ts";
import { explainPair, planTraceQueries, podQueriesKey, ROUTER_QUERIES, tracePair } from "./trace.ts";

// A host-gw pair pod-1-0 (node-1, 10.244.1.2) -> pod-2-0 (node-2, 10.244.2.2), node IPs 172.31.0.1N, as the
// agents' evidence shows it when healthy; each case breaks one thing the way a kernel would show it.

const nodeIps = new Map([["node-1", ["172.31.0.11"]], ["node-2", ["172.31.0.12"]]]);
const states = new Map<string, NodeProbeState>([
  ["node-1", { node: "node-1", reachable: true, podCidrs: ["10.244.1.0/24"], nodeIps: ["172.31.0.11"], podMtu: 1500, encapOverhead: 0, underlayMac: "02:00:00:00:00:01" }],
  ["node-2", { node: "node-2", reachable: true, podCidrs: ["10.244.2.0/24"], nodeIps: ["172.31.0.12"], podMtu: 1500, encapOverhead: 0, underlayMac: "02:00:00:00:00:02" }],
]);

function node(name: string, index: number, peer: number): NodeEvidence {
  const own = `10.244.${index}`;
  const other = `10.244.${peer}`;
  const ok = (dst: string, from: string, iifOf: string, route: RouteLookup["route"], iif: string): RouteLookup => ({ query: { dst, from, iifOf }, iif, route });
  // Forward and reply hops of the pair as this node sees them.
  const lookups = index === 1
    ? [ok("10.244.2.2", "10.244.1.2", "10.244.1.2", { dst: "10.244.2.2", gateway: "172.31.0.12", dev: "eth0" }, "fn-br0"),
       ok("10.244.1.2", "10.244.2.2", "172.31.0.12", { dst: "10.244.1.2", dev: "fn-br0" }, "eth0")]
    : [ok("10.244.2.2", "10.244.1.2", "172.31.0.11", { dst: "10.244.2.2", dev: "fn-br0" }, "eth0"),
       ok("10.244.1.2", "10.244.2.2", "10.244.2.2", { dst: "10.244.1.2", gateway: "172.31.0.11", dev: "eth0" }, "fn-br0")];
  return {
    node: name,
    role: "node",
    lookups,
    routes: [
      { dst: `${own}.0/24`, type: "unicast", dev: "fn-br0", protocol: "kernel", table: "main" },
      { dst: `${other}.0/24`, type: "unicast", gateway: `172.31.0.1${peer}`, dev: "eth0", protocol: "77", table: "main" },
      { dst: "172.31.0.0/24", type: "unicast", dev: "eth0", protocol: "kernel", table: "main" },
    ],
    policyRules: [{ priority: 0, family: "IPv4", table: "local" }, { priority: 32766, family: "IPv4", table: "main" }, { priority: 32767, family: "IPv4", table: "default" }],
    firewall: [],
    policies: [],
    neighbours: [{ ip: `172.31.0.1${peer}`, mac: `02:00:00:00:00:0${peer}`, dev: "eth0", state: ["REACHABLE"] }],
    fdb: [],
    links: [
      { name: "eth0", state: "UP", mtu: 1500, flags: ["BROADCAST", "UP", "LOWER_UP"] },
      { name: "fn-br0", state: "UP", mtu: 1500 },
    ],
    sysctls: { ipForward: 1, rpFilter: { all: 0, default: 0, eth0: 0 }, bridgeNfCallIptables: 1 },
    errors: [],
  };
}

function underlay(): NodeEvidence {
  return {
    node: "underlay", role: "underlay", lookups: [], routes: [], policyRules: [], firewall: [], policies: [], neighbours: [],
    fdb: [{ mac: "02:00:00:00:00:01", dev: "u1", master: "br0" }, { mac: "02:00:00:00:00:02", dev: "u2", master: "br0" }],
    links: [
      { name: "br0", state: "UP", mtu: 1500 },
      { name: "u1", state: "UP", mtu: 1500, master: "br0", node: "node-1" },
      { name: "u2", state: "UP", mtu: 1500, master: "br0", node: "node-2" },
    ],
    sysctls: { rpFilter: {} },
    errors: [],
  };
}

function healthy(): Map<string, NodeEvidence> {
  return new Map([["node-1", node("node-1", 1, 2)], ["node-2", node("node-2", 2, 1)], ["underlay", underlay()]]);
}

function failed(p: ProbePair = pair(), problems: PairProblem[] = ["tcp-unreachable", "udp-unreachable"], error?: string): PairResult {
  return { pair: p, verdict: "failed", attempts: 2, problems, nat: { verdict: "unknown", expectedSrc: p.src.ip }, diagnosis: [], ...(error === undefined ? {} : { error }) };
}

type Mutate = (e: Map<string, NodeEvidence>) => void;
const n1 = (e: Map<string, NodeEvidence>): NodeEvidence => e.get("node-1")!;
const n2 = (e: Map<string, NodeEvidence>): NodeEvidence => e.get("node-2")!;
const fail = (ev: NodeEvidence, index: number, error: string): void => {
  const lookup = ev.lookups[index]!;
  delete lookup.route;
  lookup.error = error;
};

describe("tracePair: the first finding names the object, the place and the fix", () => {
  // Every row has all six fields: Bun hands a shorter row's missing argument a done callback.
  it.each<[string, Mutate, string, string, string, string | undefined]>([
    ["a blackhole route on node-1", (e) => { n1(e).routes.push({ dst: "10.244.2.2", type: "blackhole", protocol: "boot" }); fail(n1(e), 0, "Invalid argument"); },
      "blackhole-route", "node-1", "node-1: route `blackhole 10.244.2.2` silently drops 10.244.1.2 -> 10.244.2.2", "ip route del blackhole 10.244.2.2"],
    ["an unreachable route in another table, chosen by a rule", (e) => {
      n2(e).policyRules.push({ priority: 100, family: "IPv4", src: "10.244.1.0/24", table: "7" });
      n2(e).routes.push({ dst: "10.244.2.0/25", type: "unreachable", table: "7" });
      fail(n2(e), 0, "No route to host");
    }, "blackhole-route", "node-2", "node-2: route `unreachable 10.244.2.0/25 table 7` rejects (unreachable) 10.244.1.2 -> 10.244.2.2", "ip route del unreachable 10.244.2.0/25 table 7"],
    ["a prohibit policy rule on node-2", (e) => { n2(e).policyRules.push({ priority: 100, family: "IPv4", dst: "10.244.1.2", action: "prohibit" }); fail(n2(e), 1, "Permission denied"); },
      "policy-rule", "node-2", "node-2: ip rule 100 (`to 10.244.1.2 prohibit`) rejects (administratively prohibited) 10.244.2.2 -> 10.244.1.2", "ip rule del priority 100"],
    ["an IPv6 rule does not apply to IPv4", (e) => { n2(e).policyRules.push({ priority: 100, family: "IPv6", action: "prohibit" }); fail(n2(e), 1, "No route to host"); },
      "route-lookup-failed", "node-2", "node-2: `ip route get 10.244.1.2 from 10.244.2.2 iif fn-br0` answers No route to host", undefined],
    ["forwarding off on node-2", (e) => { n2(e).sysctls.ipForward = 0; fail(n2(e), 0, "No route to host"); },
      "forwarding-disabled", "node-2", "node-2: net.ipv4.ip_forward is 0, so node-2 does not forward 10.244.1.2 -> 10.244.2.2", "sysctl -w net.ipv4.ip_forward=1"],
    ["forwarding off on node-2's arrival device only (net.ipv4.conf.eth0.forwarding=0)", (e) => { n2(e).sysctls.deviceForwarding = { all: 1, eth0: 0, "fn-br0": 1 }; fail(n2(e), 0, "No route to host"); },
      "forwarding-disabled", "node-2", "node-2: net.ipv4.conf.eth0.forwarding is 0, so node-2 does not forward 10.244.1.2 -> 10.244.2.2 arriving on eth0", "sysctl -w net.ipv4.conf.eth0.forwarding=1"],
    ["rp_filter on node-2 with the way back by another device", (e) => {
      n2(e).sysctls.rpFilter.all = 1;
      n2(e).routes[1]!.dev = "eth1"; // the way back leaves by a second link
      fail(n2(e), 0, "Invalid cross-device link");
    }, "rp-filter", "node-2", "node-2: rp_filter=1 on eth0 drops 10.244.1.2 -> 10.244.2.2: the route back to 10.244.1.2 leaves by eth1 via 172.31.0.11, not eth0",
      "sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.eth0.rp_filter=2"],
    ["a foreign route more specific than flatnet's", (e) => {
      n1(e).routes.push({ dst: "10.244.2.0/25", gateway: "172.31.0.99", dev: "eth0", protocol: "boot", table: "main" });
      n1(e).lookups[0]!.route = { dst: "10.244.2.2", gateway: "172.31.0.99", dev: "eth0" };
    }, "foreign-route", "node-1", "node-1: route `10.244.2.0/25 via 172.31.0.99 dev eth0` (proto boot) is more specific than flatnet's 10.244.2.0/24 via 172.31.0.12 dev eth0 and takes 10.244.1.2 -> 10.244.2.2",
      "ip route del 10.244.2.0/25 via 172.31.0.99 dev eth0"],
    ["node-1's eth0 without carrier", (e) => { n1(e).links[0] = { name: "eth0", state: "LOWERLAYERDOWN", mtu: 1500, flags: ["NO-CARRIER", "UP"] }; },
      "link-down", "node-1", "node-1: eth0 has no carrier (state LOWERLAYERDOWN): the other end of the link is down, and 10.244.1.2 -> 10.244.2.2 leaves by it",
      "bring up the other end of eth0 (its underlay port or peer)"],
    ["node-1's eth0 set down", (e) => { n1(e).links[0] = { name: "eth0", state: "DOWN", mtu: 1500, flags: ["BROADCAST"] }; },
      "link-down", "node-1", "node-1: eth0 is down, and 10.244.1.2 -> 10.244.2.2 leaves by it", "ip link set eth0 up"],
    ["the next hop's neighbour FAILED", (e) => { n1(e).neighbours[0]!.state = ["FAILED"]; },
      "neighbour-failed", "node-1", "node-1: neighbour 172.31.0.12 on eth0 is FAILED: nothing answers ARP/ND for the next hop of 10.244.1.2 -> 10.244.2.2",
      "check that 172.31.0.12 exists on eth0's link, or remove the route that uses it"],
    ["an iptables FORWARD policy DROP on node-2", (e) => { n2(e).policies.push(parseIptablesSave("*filter\n:FORWARD DROP [5:300]\nCOMMIT\n", "iptables-legacy").policies[0]!); },
      "chain-policy-drop", "node-2", "node-2: iptables-legacy filter FORWARD policy DROP (5 packets so far) drops 10.244.1.2 -> 10.244.2.2: no rule of the chain accepts it", "iptables-legacy -t filter -P FORWARD ACCEPT"],
    ["a wrong FDB entry on the underlay bridge", (e) => { e.get("underlay")!.fdb[1] = { mac: "02:00:00:00:00:02", dev: "u1", master: "br0", state: "static" }; },
      "wrong-fdb", "underlay", "underlay: bridge FDB sends 02:00:00:00:00:02 (node-2's underlay MAC) to port u1 (to node-1), but node-2 is on u2", "bridge fdb del 02:00:00:00:00:02 dev u1 master"],
    ["an underlay port down", (e) => { e.get("underlay")!.links[2]!.state = "DOWN"; },
      "link-down", "underlay", "underlay: bridge port u2 (to node-2) is DOWN", "ip link set u2 up"],
  ])("%s", (_name, mutate, code, where, message, fix) => {
    const evidence = healthy();
    mutate(evidence);
    const [first] = tracePair(failed(), states, evidence, nodeIps).findings;
    expect(first).toEqual({ code, node: where, message, ...(fix === undefined ? {} : { fix }), ...(first?.details === undefined ? {} : { details: first.details }) });
  });

  it("an underlay port MTU below the pod MTU, when large packets are lost", () => {
    const evidence = healthy();
    evidence.get("underlay")!.links[2]!.mtu = 1400;
    expect(tracePair(failed(pair(), ["tcp-unreachable"]), states, evidence, nodeIps).findings).toEqual([]);
    const findings = tracePair(failed(pair(), ["mtu-tcp-blackhole", "mtu-udp-blackhole"]), states, evidence, nodeIps).findings;
    expect(findings.map((f) => [f.code, f.node, f.message, f.fix])).toEqual([
      ["mtu-below-pod-mtu", "underlay", "underlay: bridge port u2 (to node-2) has MTU 1400, below the 1500 the pod MTU 1500 needs: larger frames are dropped at L2, without ICMP", "ip link set u2 mtu 1500"],
    ]);
  });

  it("a node's underlay device MTU below the pod MTU, when large packets are lost", () => {
    const evidence = healthy();
    n1(evidence).links[0]!.mtu = 1280;
    expect(tracePair(failed(pair(), ["tcp-unreachable"]), states, evidence, nodeIps).findings).toEqual([]);
    const findings = tracePair(failed(pair(), ["mtu-udp-blackhole"]), states, evidence, nodeIps).findings;
    expect(findings.map((f) => [f.code, f.node, f.message, f.fix])).toEqual([
      ["mtu-below-pod-mtu", "node-1", "node-1: eth0 has MTU 1280, below the pod MTU 1500: full-size pod packets through it are lost", "ip link set eth0 mtu 1500"],
    ]);
  });

  it("a FORWARD policy with an accept rule for the pair is not the cause", () => {
    const evidence = healthy();
    const filter = parseIptablesSave("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -s 10.244.0.0/16 -d 10.244.0.0/16 -j ACCEPT\nCOMMIT\n", "iptables-nft");
    n2(evidence).policies.push(...filter.policies);
    n2(evidence).firewall.push(...filter.rules);
    expect(tracePair(failed(), states, evidence, nodeIps).findings).toEqual([]);
  });

  it.each([[1, ["chain-policy-drop"]], [0, []]])("same-node pods: a FORWARD policy DROP applies to bridged frames only with bridge-nf-call-iptables=%i", (bridgeNf, codes) => {
    const evidence = healthy();
    n1(evidence).sysctls.bridgeNfCallIptables = bridgeNf;
    n1(evidence).policies.push(...parseIptablesSave("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n", "iptables-nft").policies);
    const local = pair("pod-1-0", "node-1", "10.244.1.2", "pod-1-1", "node-1", "10.244.1.3");
    n1(evidence).lookups.push({ query: { dst: "10.244.1.3", from: "10.244.1.2", iifOf: "10.244.1.2" }, iif: "fn-br0", route: { dst: "10.244.1.3", dev: "fn-br0" } });
    expect(tracePair(failed(local), states, evidence, nodeIps).findings.map((f) => f.code)).toEqual(codes);
  });

  it("same-node pods behind two isolated ports of the pod bridge", () => {
    const evidence = healthy();
    const local = pair("pod-1-0", "node-1", "10.244.1.2", "pod-1-1", "node-1", "10.244.1.3");
    n1(evidence).lookups.push({ query: { dst: "10.244.1.3", from: "10.244.1.2", iifOf: "10.244.1.2" }, iif: "fn-br0", route: { dst: "10.244.1.3", dev: "fn-br0" } });
    n1(evidence).links.push({ name: "fnv0000000a", state: "UP", mtu: 1500, master: "fn-br0" }, { name: "fnv0000000b", state: "UP", mtu: 1500, master: "fn-br0" });
    expect(tracePair(failed(local), states, evidence, nodeIps).findings).toEqual([]);
    for (const link of n1(evidence).links.filter((l) => l.name.startsWith("fnv"))) link.isolated = true;
    expect(tracePair(failed(local), states, evidence, nodeIps).findings.map((f) => [f.code, f.node, f.message, f.fix])).toEqual([[
      "bridge-port-isolated", "node-1",
      "node-1: ports fnv0000000a, fnv0000000b of fn-br0 are isolated: the bridge forwards no frames between isolated ports, so pods behind them cannot reach each other (10.244.1.2 -> 10.244.1.3)",
      "bridge link set dev fnv0000000a isolated off; bridge link set dev fnv0000000b isolated off",
    ]]);
  });

  it.each<[string, Mutate, string, string]>([
    ["a pod veth detached from the pod bridge", (e) => {
      n2(e).links.push({ name: "fnv00000002", state: "UP", mtu: 1500, kind: "veth" });
      n2(e).neighbours.push({ ip: "10.244.2.2", mac: "02:00:00:00:00:22", dev: "fn-br0", state: ["STALE"] });
    }, "node-2: pod veth fnv00000002 is not a port of fn-br0 (no master), so the pod behind it is cut off: nothing answers ARP for 10.244.2.2 (10.244.1.2 -> 10.244.2.2)",
      "ip link set fnv00000002 master fn-br0"],
    ["a pod's neighbour entry pinned to a MAC no bridge port has", (e) => {
      n2(e).neighbours.push({ ip: "10.244.2.2", mac: "02:00:00:00:00:42", dev: "fn-br0", state: ["PERMANENT"] });
      n2(e).fdb.push({ mac: "02:00:00:00:00:22", dev: "fnv00000002", master: "fn-br0" });
    }, "node-2: neighbour 10.244.2.2 on fn-br0 is pinned to 02:00:00:00:00:42 (PERMANENT), a MAC no port of fn-br0 has: 10.244.1.2 -> 10.244.2.2 goes nowhere",
      "ip neigh del 10.244.2.2 dev fn-br0"],
  ])("%s", (_name, mutate, message, fix) => {
    const evidence = healthy();
    const [first] = tracePair(failed(), states, evidence, nodeIps).findings;
    expect(first).toBeUndefined();
    mutate(evidence);
    const [found] = tracePair(failed(), states, evidence, nodeIps).findings;
    expect([found?.node, found?.message, found?.fix]).toEqual(["node-2", message, fix]);
  });

  it("a detached veth is not named for a pod whose MAC its bridge port still holds", () => {
    const evidence = healthy();
    n2(evidence).links.push({ name: "fnv00000009", state: "UP", mtu: 1500, kind: "veth" });
    n2(evidence).neighbours.push({ ip: "10.244.2.2", mac: "02:00:00:00:00:22", dev: "fn-br0", state: ["REACHABLE"] });
    n2(evidence).fdb.push({ mac: "02:00:00:00:00:22", dev: "fnv00000002", master: "fn-br0" });
    expect(tracePair(failed(), states, evidence, nodeIps).findings).toEqual([]);
  });

  it("a pod's permanent neighbour entry with the MAC its bridge port learned is no cause", () => {
    const evidence = healthy();
    n2(evidence).neighbours.push({ ip: "10.244.2.2", mac: "02:00:00:00:00:22", dev: "fn-br0", state: ["PERMANENT"] });
    n2(evidence).fdb.push({ mac: "02:00:00:00:00:22", dev: "fnv00000002", master: "fn-br0" });
    expect(tracePair(failed(), states, evidence, nodeIps).findings).toEqual([]);
  });

  it("a refused connection through a DNAT rule names the rule, not the responder", () => {
    const evidence = healthy();
    n2(evidence).firewall.push(...parseIptablesSave("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.244.2.2/32 -p tcp -m tcp --dport 7471 -j DNAT --to-destination 10.244.2.2:7499\nCOMMIT\n", "iptables-nft").rules);
    const findings = tracePair(failed(pair(), ["tcp-unreachable", "udp-unreachable"], "tcp: connect ECONNREFUSED 10.244.2.2:7471"), states, evidence, nodeIps).findings;
    expect(findings.map((f) => [f.code, f.node, f.fix])).toEqual([["dnat-rule", "node-2", "iptables-nft -t nat -D PREROUTING 1"]]);
    expect(findings[0]!.message).toContain("node-2 rewrites the destination of 10.244.1.2 -> 10.244.2.2:7471");
  });

  it("a refused connection names the stopped responder", () => {
    const findings = tracePair(failed(pair(), ["tcp-unreachable", "udp-unreachable"], "tcp: connect ECONNREFUSED 10.244.2.2:7471"), states, healthy(), nodeIps).findings;
    expect(findings.map((f) => [f.code, f.node, f.message])).toEqual([
      ["responder-down", "node-2", "pod-2-0 (10.244.2.2) refused the connection on port 7471: the path works, but its probe responder is not running"],
    ]);
  });

  it("a refused connection to a node endpoint names its agent (the node responder lives in it)", () => {
    const p: ProbePair = { ...pair(), dst: { pod: "node:node-2", node: "node-2", ip: "172.31.0.12", port: 7471, kind: "node" }, kind: "pod-node" };
    const down = new Map(states);
    down.set("node-2", { ...states.get("node-2")!, error: "agent: connect ECONNREFUSED /run/agent.sock" });
    const findings = tracePair(failed(p, ["tcp-unreachable"], "tcp: connect ECONNREFUSED 172.31.0.12:7471"), down, healthy(), nodeIps).findings;
    expect(findings.map((f) => [f.code, f.node, f.message, f.fix])).toEqual([
      ["agent-unreachable", "node-2", "node-2's agent is not running: the node responder it hosts refused the connection on 172.31.0.12:7471 (agent: connect ECONNREFUSED /run/agent.sock)", "restart the flatnet agent of node-2"],
    ]);
  });

  it("walks the hops forward then back, the underlay between the nodes, and marks where it breaks", () => {
    const evidence = healthy();
    n1(evidence).routes.push({ dst: "10.244.2.2", type: "blackhole" });
    fail(n1(evidence), 0, "Invalid argument");
    const { hops } = tracePair(failed(), states, evidence, nodeIps);
    expect(hops.map((h) => [h.node, h.direction, `${h.packet.src}>${h.packet.dst}`, h.decision, h.status, h.findings])).toEqual([
      ["node-1", "forward", "10.244.1.2>10.244.2.2", "error: Invalid argument", "broken", ["blackhole-route"]],
      ["underlay", "forward", "10.244.1.2>10.244.2.2", "bridged", "ok", []],
      ["node-2", "forward", "10.244.1.2>10.244.2.2", "dev fn-br0", "ok", []],
      ["node-2", "reply", "10.244.2.2>10.244.1.2", "via 172.31.0.11 dev eth0", "ok", []],
      ["underlay", "reply", "10.244.2.2>10.244.1.2", "bridged", "ok", []],
      ["node-1", "reply", "10.244.2.2>10.244.1.2", "dev fn-br0", "ok", []],
    ]);
  });

  it("a node without evidence leaves its hops unknown", () => {
    const evidence = healthy();
    evidence.delete("node-2");
    expect(tracePair(failed(), states, evidence, nodeIps).hops.filter((h) => h.node === "node-2").map((h) => [h.status, h.decision])).toEqual([
      ["unknown", "no evidence (agent did not answer)"],
      ["unknown", "no evidence (agent did not answer)"],
    ]);
  });
});

describe("explainPair", () => {
  it("healthy evidence and nothing else: unexplained, as before", () => {
    expect(explainPair(failed(), states, healthy(), nodeIps).diagnosis.map((d) => d.code)).toEqual(["unexplained"]);
  });

  it("reads iptables rules from the evidence: a MASQUERADE rule names its number, text, the address it rewrites to and the fix", () => {
    const evidence = healthy();
    n1(evidence).firewall.push(...parseIptablesSave("*nat\n-A POSTROUTING -s 10.244.1.0/24 -d 10.244.0.0/16 ! -o fn-br0 -j MASQUERADE\nCOMMIT\n", "iptables-nft").rules);
    const result: PairResult = { ...failed(pair(), ["nat-violation"]), nat: { verdict: "snat-to-node-ip", observedSrc: "172.31.0.11", expectedSrc: "10.244.1.2" } };
    expect(explainPair(result, states, evidence, nodeIps).diagnosis.map((d) => [d.code, d.node, d.message, d.fix])).toEqual([
      ["snat-rule", "node-1", "node-1 rewrites the source of 10.244.1.2 -> 10.244.2.2: masquerade to 172.31.0.11 (iptables-nft nat POSTROUTING rule 1: -s 10.244.1.0/24 -d 10.244.0.0/16 ! -o fn-br0 -j MASQUERADE)",
        "iptables-nft -t nat -D POSTROUTING 1"],
    ]);
  });

  it("a conntrack entry of this run's probe flow shows a NAT that already happened; an earlier flow's, another port's, or one without NAT name nothing", () => {
    const evidence = healthy();
    n1(evidence).sysctls.conntrackTimeouts = { nf_conntrack_udp_timeout: 30, nf_conntrack_udp_timeout_stream: 120 };
    const entry = (timeout: number, dport: number, replyDst: string): string =>
      `ipv4     2 udp      17 ${timeout} src=10.244.1.2 dst=10.244.2.2 sport=59513 dport=${dport} [UNREPLIED] src=10.244.2.2 dst=${replyDst} sport=${dport} dport=59513 mark=0 use=1\n`;
    const result: PairResult = { ...failed(pair(), ["nat-violation"]), nat: { verdict: "snat-to-node-ip", observedSrc: "172.31.0.11", expectedSrc: "10.244.1.2" } };
    const named = (text: string, probeSeconds?: number): string[][] => {
      n1(evidence).conntrack = parseConntrack(text);
      return explainPair(result, states, evidence, nodeIps, probeSeconds === undefined ? {} : { probeSeconds }).diagnosis.filter((d) => d.code === "conntrack-nat").map((d) => [d.node!, d.message, d.fix!]);
    };
    expect(named(entry(28, 7471, "172.31.0.11"), 3)).toEqual([[
      "node-1",
      "node-1: conntrack entry `udp src=10.244.1.2 dst=10.244.2.2 sport=59513 dport=7471 reply src=10.244.2.2 dst=172.31.0.11` of this probe's flow shows 10.244.1.2 was rewritten to 172.31.0.11 (SNAT)",
      "conntrack -D -p udp -s 10.244.1.2 -d 10.244.2.2 --dport 7471, once the rule that made it is gone",
    ]]);
    // A repaired fault's entry, idle 20 s, while this run took 3 s: not this run's flow.
    expect(named(entry(10, 7471, "172.31.0.11"), 3)).toEqual([]);
    expect(named(entry(28, 7472, "172.31.0.11"), 3)).toEqual([]);
    expect(named(entry(28, 7471, "10.244.1.2"), 3)).toEqual([]);
    expect(named(entry(28, 7471, "172.31.0.11"))).toEqual([]);
  });

  it("without evidence it is diagnosePair's answer, without hops", () => {
    expect(explainPair(failed(), states, new Map(), nodeIps)).toEqual({ diagnosis: [{ code: "unexplained", message: "no cause found in the state of node-1 and node-2" }] });
  });
});

describe("planTraceQueries", () => {
  it("asks each node once per distinct question, whatever the number of pairs through it", () => {
    const pairs = [pair(), pair("pod-1-1", "node-1", "10.244.1.3"), pair()];
    const queries = planTraceQueries(pairs, nodeIps);
    expect(queries.get("node-1")).toEqual([
      { dst: "10.244.2.2", from: "10.244.1.2", iifOf: "10.244.1.2" },
      { dst: "10.244.1.2", from: "10.244.2.2", iifOf: "172.31.0.12" },
      { dst: "10.244.2.2", from: "10.244.1.3", iifOf: "10.244.1.3" },
      { dst: "10.244.1.3", from: "10.244.2.2", iifOf: "172.31.0.12" },
    ]);
    expect(queries.get("node-2")).toHaveLength(4);
  });

  it("a node endpoint sends from its own address: no arrival device", () => {
    const p: ProbePair = { ...pair(), src: { pod: "node:node-1", node: "node-1", ip: "172.31.0.11", port: 7471, kind: "node" }, kind: "node-pod" };
    expect(planTraceQueries([p], nodeIps).get("node-1")).toEqual([
      { dst: "10.244.2.2", from: "172.31.0.11" },
      { dst: "172.31.0.11", from: "10.244.2.2", iifOf: "172.31.0.12" },
    ]);
  });
});

describe("a pod's own namespace (read on the lab)", () => {
  // A pod's routes and its own lookup toward the other pod, as the lab reads them in the pod's namespace.
  function pod(name: string, ip: string, peer: string, withDefault: boolean): NodeEvidence {
    const gateway = ip.replace(/\.\d+$/, ".1");
    const query = { dst: peer, from: ip };
    return {
      node: name, role: "pod", netns: `lab-${name}`, policyRules: [], firewall: [], policies: [], neighbours: [], fdb: [], errors: [],
      lookups: [withDefault ? { query, route: { dst: peer, gateway, dev: "eth0", prefsrc: ip } } : { query, error: "Network is unreachable" }],
      routes: [
        ...(withDefault ? [{ dst: "0.0.0.0/0", gateway, dev: "eth0" }] : []),
        { dst: ip.replace(/\.\d+$/, ".0/24"), dev: "eth0", protocol: "kernel" },
        { dst: ip, type: "local", dev: "eth0", protocol: "kernel", table: "local" },
      ],
      links: [{ name: "lo", state: "UNKNOWN", mtu: 65536 }, { name: "eth0", state: "UP", mtu: 1500 }],
      sysctls: { rpFilter: {} },
    };
  }
  function withPods(srcDefault: boolean, dstDefault: boolean): Map<string, NodeEvidence> {
    const evidence = healthy();
    evidence.set(podQueriesKey({ pod: "pod-1-0" }), pod("pod-1-0", "10.244.1.2", "10.244.2.2", srcDefault));
    evidence.set(podQueriesKey({ pod: "pod-2-0" }), pod("pod-2-0", "10.244.2.2", "10.244.1.2", dstDefault));
    return evidence;
  }

  it("asks each pod of the pair its own lookup toward the other, under podQueriesKey", () => {
    const queries = planTraceQueries([pair()], nodeIps);
    expect([queries.get("*pod pod-1-0"), queries.get("*pod pod-2-0")]).toEqual([[{ dst: "10.244.2.2", from: "10.244.1.2" }], [{ dst: "10.244.1.2", from: "10.244.2.2" }]]);
    expect(podQueriesKey({ pod: "web-0", namespace: "shop" })).toBe("*pod shop/web-0");
  });

  it.each<[string, boolean, boolean, Record<string, unknown>]>([
    ["the source pod's request", false, true, {
      code: "pod-route-missing",
      node: "node-1",
      message: "pod-1-0 (netns lab-pod-1-0) on node-1 has no route to 10.244.2.2: `ip route get 10.244.2.2 from 10.244.1.2` answers Network is unreachable; its default route via 10.244.1.1 is missing, so 10.244.1.2 -> 10.244.2.2 never leaves the pod",
      fix: "ip -n lab-pod-1-0 route add default via 10.244.1.1 dev eth0",
    }],
    ["the destination pod's reply", true, false, {
      code: "pod-route-missing",
      node: "node-2",
      message: "pod-2-0 (netns lab-pod-2-0) on node-2 has no route to 10.244.1.2: `ip route get 10.244.1.2 from 10.244.2.2` answers Network is unreachable; its default route via 10.244.2.1 is missing, so 10.244.2.2 -> 10.244.1.2 never leaves the pod",
      fix: "ip -n lab-pod-2-0 route add default via 10.244.2.1 dev eth0",
    }],
  ])("a pod without its default route, in %s: named first, with the route to add", (_name, srcDefault, dstDefault, expected) => {
    const { diagnosis } = explainPair(failed(), states, withPods(srcDefault, dstDefault), nodeIps);
    expect(diagnosis[0]).toMatchObject(expected);
    expect(diagnosis.map((d) => d.code)).not.toContain("unexplained");
  });

  it("healthy pods: no pod finding", () => {
    expect(tracePair(failed(), states, withPods(true, true), nodeIps).findings.map((f) => f.code)).not.toContain("pod-route-missing");
  });

  it("a route that exists but refuses is not a missing one", () => {
    const evidence = withPods(true, true);
    const src = evidence.get("*pod pod-1-0")!;
    src.routes.push({ dst: "10.244.2.0/24", type: "blackhole" });
    src.lookups[0] = { query: src.lookups[0]!.query, error: "Invalid argument" };
    expect(tracePair(failed(), states, evidence, nodeIps).findings.map((f) => f.code)).not.toContain("pod-route-missing");
  });
});

describe("a router between two L2 segments (the lab's auto)", () => {
  // node-1 on 172.31.0.0/24, node-2 moved to 172.31.1.0/24 behind the router's eth0/eth1.
  const routedIps = new Map([["node-1", ["172.31.0.11"]], ["node-2", ["172.31.1.12"]]]);
  function router(ipForward: number, peerSubnet = "172.31.1.0/24"): NodeEvidence {
    const ask = (dst: string, from: string, iif: string, dev: string): RouteLookup =>
      ipForward === 1 ? { query: { dst, from, iifOf: from }, iif, route: { dst, dev } } : { query: { dst, from, iifOf: from }, iif, error: "No route to host" };
    return {
      node: "router", role: "router", policyRules: [], firewall: [], policies: [], neighbours: [], fdb: [], links: [], errors: [],
      lookups: [ask("172.31.1.12", "172.31.0.11", "eth0", "eth1"), ask("172.31.0.11", "172.31.1.12", "eth1", "eth0")],
      routes: [
        { dst: "172.31.0.0/24", type: "unicast", dev: "eth0", protocol: "kernel", table: "main" },
        { dst: peerSubnet, type: "unicast", dev: peerSubnet === "172.31.1.0/24" ? "eth1" : "eth0", protocol: "kernel", table: "main" },
      ],
      sysctls: { ipForward, rpFilter: {} },
    };
  }

  it("asks the router the node-to-node questions under ROUTER_QUERIES", () => {
    expect(planTraceQueries([pair()], routedIps).get(ROUTER_QUERIES)).toEqual([
      { dst: "172.31.1.12", from: "172.31.0.11", iifOf: "172.31.0.11" },
      { dst: "172.31.0.11", from: "172.31.1.12", iifOf: "172.31.1.12" },
    ]);
  });

  it("is a hop of its own after the bridge, and its ip_forward=0 is named there", () => {
    const evidence = healthy();
    evidence.set("router", router(0));
    const traced = tracePair(failed(), states, evidence, routedIps);
    expect(traced.hops.map((h) => `${h.node}/${h.direction}`)).toEqual([
      "node-1/forward", "underlay/forward", "router/forward", "node-2/forward", "node-2/reply", "underlay/reply", "router/reply", "node-1/reply",
    ]);
    expect(traced.findings[0]).toMatchObject({ code: "forwarding-disabled", node: "router", fix: "sysctl -w net.ipv4.ip_forward=1" });
    expect(traced.hops.find((h) => h.node === "router")).toMatchObject({ packet: { src: "172.31.0.11", dst: "172.31.1.12" }, status: "broken" });
  });

  it("is no hop when both nodes are on one of its segments", () => {
    const evidence = healthy();
    evidence.set("router", router(0, "172.31.1.0/25"));
    evidence.get("router")!.routes[1]!.dev = "eth0";
    expect(tracePair(failed(), states, evidence, routedIps).hops.map((h) => h.node)).not.toContain("router");
  });
});
