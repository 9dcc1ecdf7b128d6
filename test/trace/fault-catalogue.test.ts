import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProbePlan, type ProbeOptions, type ProbeReport } from "@flatnet/core";
import { runProbe, type DialTransport } from "../../apps/agent/src/probe/engine.ts";
import { kernelStateSource } from "../../apps/agent/src/probe/node-state.ts";
import { agentTransport, responderTransport } from "../../apps/agent/src/probe/transport.ts";
import { inNetns, ipBatch, isRoot, ProbeTopology } from "../probe/topology.ts";
import { between, both, expectExplained, waitHealthy, type Fault } from "./catalogue.ts";

// The tracer's fault catalogue: faults made by hand, by other tools than flatnet's (iptables-nft, iptables-legacy,
// nft, ip route/rule, sysctl, link MTU/state, bridge FDB, neighbours, killed processes), injected in turn into one
// hand-built 3-node x 2-pod host-gw network (namespaces fn-tr-c*) and repaired after each check. For each: exactly
// the broken pairs, the right verdict, a first finding naming the object, and nothing "unexplained".

const PORT = 7471;
const PROBE_TOKEN = "fn-tr-probe-token-0123456789";
const POD_MTU = 1500;
const OPTIONS: ProbeOptions = { udpCount: 2, tcpCount: 1, mtuTcpBytes: 16384, podMtu: POD_MTU, timeoutMs: 1000, retries: 1, concurrency: 32 };
const relayServer = fileURLToPath(new URL("../probe/agent-relay-server.ts", import.meta.url));

const root = isRoot();
if (!root) console.log("trace fault catalogue skipped: it needs root to create network namespaces");

const pods = (node: number): string[] => [`pod-${node}-0`, `pod-${node}-1`];
const allPods = [1, 2, 3].flatMap(pods);

describe.skipIf(!root)("path tracer: a catalogue of faults made by hand, on host-gw", () => {
  const topo = new ProbeTopology("c", 3, 2, "fn-tr-");
  const ul = topo.underlay;
  const n = (i: number): string => topo.node(`node-${i}`).netns;
  const agentSocket = (node: string): string => join(topo.dir, `agent-${node}.sock`);
  const direct: DialTransport = responderTransport((src) => ({ socketPath: topo.controlSocket(src.pod) }));
  // The responders dial only for the probe token's holder; the agents forward their caller's token.
  const viaAgents = agentTransport((node) => ({ socketPath: agentSocket(node) }), undefined, PROBE_TOKEN);
  const macOf = (netns: string, dev: string): string => JSON.parse(inNetns(netns, "ip", ["-j", "link", "show", "dev", dev]))[0].address as string;
  const sysctl = (netns: string, setting: string): void => void inNetns(netns, "sysctl", ["-qw", setting]);

  beforeAll(async () => {
    topo.up();
    await topo.startResponders(PORT, PROBE_TOKEN);
    await Promise.all(topo.nodes.map((node) => topo.startProcess(`agent-${node.name}`, node.netns, [relayServer, node.name, node.netns, agentSocket(node.name)])));
  }, 60_000);

  afterAll(() => topo.cleanup());

  async function check(transport: DialTransport = direct): Promise<ProbeReport> {
    const inventory = topo.inventory(PORT);
    const underlay = { name: "underlay", netns: ul, role: "underlay" as const, portNodes: new Map(topo.nodes.map((node) => [`u${node.index}`, node.name])) };
    return runProbe({
      cluster: inventory.cluster,
      plan: buildProbePlan(inventory, { mode: "all-pods" }),
      options: OPTIONS,
      transport,
      nodeIps: new Map(inventory.nodes.map((node) => [node.name, node.nodeIps])),
      states: kernelStateSource(topo.kernelNodes(POD_MTU), [underlay]),
      retryBackoffMs: 0,
    });
  }

  const faults: Fault[] = [
    {
      name: "iptables-nft MASQUERADE of node-2's pods towards the pod network",
      inject: () => void inNetns(n(2), "iptables-nft", ["-t", "nat", "-A", "POSTROUTING", "-s", "10.244.2.0/24", "-d", "10.244.0.0/16", "!", "-o", "fn-br0", "-j", "MASQUERADE"]),
      repair: () => void inNetns(n(2), "iptables-nft", ["-t", "nat", "-F", "POSTROUTING"]),
      broken: between(pods(2), [...pods(1), ...pods(3)]).sort(),
      first: ["snat-rule", "node-2", "iptables-nft nat POSTROUTING rule 1: -s 10.244.2.0/24 -d 10.244.0.0/16 ! -o fn-br0 -j MASQUERADE"],
    },
    {
      name: "iptables-nft FORWARD policy DROP on node-3 (bridged pod traffic too: bridge-nf-call-iptables)",
      inject: () => void inNetns(n(3), "iptables-nft", ["-P", "FORWARD", "DROP"]),
      repair: () => void inNetns(n(3), "iptables-nft", ["-P", "FORWARD", "ACCEPT"]),
      broken: [...both(pods(3), [...pods(1), ...pods(2)]), ...between(pods(3), pods(3))].sort(),
      first: ["chain-policy-drop", "node-3", "iptables-nft filter FORWARD policy DROP"],
    },
    {
      name: "iptables-legacy FORWARD DROP rule for one pod pair on node-1",
      inject: () => void inNetns(n(1), "iptables-legacy", ["-A", "FORWARD", "-s", "10.244.1.2", "-d", "10.244.3.2", "-j", "DROP"]),
      repair: () => void inNetns(n(1), "iptables-legacy", ["-F", "FORWARD"]),
      broken: both(["pod-1-0"], ["pod-3-0"]),
      first: ["drop-rule", "node-1", "iptables-legacy filter FORWARD rule 1: -s 10.244.1.2/32 -d 10.244.3.2/32 -j DROP"],
    },
    {
      name: "nft drop rule on node-2 for one destination pod",
      inject: () => void inNetns(n(2), "nft", ["-f", "-"], "table ip fn-tr-fault {\n  chain forward { type filter hook forward priority 0; ip daddr 10.244.1.3 drop; }\n}\n"),
      repair: () => void inNetns(n(2), "nft", ["delete", "table", "ip", "fn-tr-fault"]),
      broken: both(["pod-1-1"], pods(2)),
      first: ["drop-rule", "node-2", "nft ip fn-tr-fault forward"],
    },
    {
      name: "blackhole route to one pod on node-1",
      inject: () => ipBatch(n(1), ["route add blackhole 10.244.3.3/32"]),
      repair: () => ipBatch(n(1), ["route del blackhole 10.244.3.3/32"]),
      broken: both(pods(1), ["pod-3-1"]),
      first: ["blackhole-route", "node-1", "blackhole 10.244.3.3"],
    },
    {
      name: "unreachable route to half of node-2's pod CIDR on node-3",
      inject: () => ipBatch(n(3), ["route add unreachable 10.244.2.0/25"]),
      repair: () => ipBatch(n(3), ["route del unreachable 10.244.2.0/25"]),
      broken: both(pods(3), pods(2)),
      first: ["blackhole-route", "node-3", "unreachable 10.244.2.0/25"],
    },
    {
      name: "prohibit route to one pod on node-2",
      inject: () => ipBatch(n(2), ["route add prohibit 10.244.1.2/32"]),
      repair: () => ipBatch(n(2), ["route del prohibit 10.244.1.2/32"]),
      broken: both(pods(2), ["pod-1-0"]),
      first: ["blackhole-route", "node-2", "prohibit 10.244.1.2"],
    },
    {
      name: "a foreign route more specific than flatnet's on node-2, to a next hop that does not exist",
      inject: () => ipBatch(n(2), ["route add 10.244.3.0/25 via 172.31.0.99 dev eth0"]),
      repair: () => ipBatch(n(2), ["route del 10.244.3.0/25 via 172.31.0.99 dev eth0"]),
      broken: both(pods(2), pods(3)),
      first: ["foreign-route", "node-2", "10.244.3.0/25 via 172.31.0.99 dev eth0"],
    },
    {
      name: "an ip rule prohibiting one pod on node-1",
      inject: () => ipBatch(n(1), ["rule add to 10.244.2.2 priority 100 prohibit"]),
      repair: () => ipBatch(n(1), ["rule del priority 100"]),
      broken: both(pods(1), ["pod-2-0"]),
      first: ["policy-rule", "node-1", "ip rule 100"],
    },
    {
      name: "net.ipv4.ip_forward=0 on node-2",
      inject: () => sysctl(n(2), "net.ipv4.ip_forward=0"),
      repair: () => sysctl(n(2), "net.ipv4.ip_forward=1"),
      broken: both(pods(2), [...pods(1), ...pods(3)]),
      first: ["forwarding-disabled", "node-2", "net.ipv4.ip_forward is 0"],
    },
    {
      name: "rp_filter=1 on node-3 with replies to node-1 leaving by a second underlay link",
      inject: () => {
        ipBatch(ul, ["link add x3 type veth peer name eth1 netns " + n(3), "link set x3 master br0", "link set x3 up"]);
        sysctl(n(3), "net.ipv4.conf.all.arp_ignore=1");
        ipBatch(n(3), ["addr add 172.31.1.13/24 dev eth1", "link set eth1 up", "route replace 10.244.1.0/24 via 172.31.0.11 dev eth1 onlink proto 77"]);
        sysctl(n(3), "net.ipv4.conf.all.rp_filter=1");
        sysctl(n(3), "net.ipv4.conf.eth0.rp_filter=1");
      },
      repair: () => {
        sysctl(n(3), "net.ipv4.conf.all.rp_filter=0");
        sysctl(n(3), "net.ipv4.conf.eth0.rp_filter=0");
        ipBatch(n(3), ["route replace 10.244.1.0/24 via 172.31.0.11 dev eth0 proto 77"]);
        ipBatch(ul, ["link del x3"]);
        sysctl(n(3), "net.ipv4.conf.all.arp_ignore=0");
      },
      broken: both(pods(3), pods(1)),
      first: ["rp-filter", "node-3", "rp_filter=1 on eth0"],
    },
    {
      name: "the underlay bridge port of node-2 at MTU 1400 (frames dropped at L2, no ICMP)",
      inject: () => ipBatch(ul, ["link set u2 mtu 1400"]),
      repair: () => ipBatch(ul, ["link set u2 mtu 1500"]),
      broken: both(pods(2), [...pods(1), ...pods(3)]),
      first: ["mtu-below-pod-mtu", "underlay", "bridge port u2 (to node-2) has MTU 1400"],
    },
    {
      name: "the underlay bridge port of node-3 down",
      inject: () => ipBatch(ul, ["link set u3 down"]),
      repair: () => ipBatch(ul, ["link set u3 up"]),
      broken: both(pods(3), [...pods(1), ...pods(2)]),
      first: ["link-down", "", /eth0 has no carrier|bridge port u3 \(to node-3\) is DOWN/],
    },
    {
      // sticky: a static entry would otherwise move back to u2 as soon as node-2 sends a frame.
      name: "a wrong static entry in the underlay bridge's FDB (node-2's MAC on node-1's port)",
      inject: () => void execFileSync("bridge", ["-n", ul, "fdb", "replace", macOf(n(2), "eth0"), "dev", "u1", "master", "static", "sticky"]),
      repair: () => void execFileSync("bridge", ["-n", ul, "fdb", "del", macOf(n(2), "eth0"), "dev", "u1", "master"]),
      broken: both(pods(2), [...pods(1), ...pods(3)]),
      first: ["wrong-fdb", "underlay", "to port u1 (to node-1), but node-2 is on u2"],
    },
    {
      name: "a wrong permanent neighbour entry for node-1 on node-3",
      inject: () => ipBatch(n(3), ["neigh replace 172.31.0.11 lladdr 02:00:00:00:00:77 dev eth0 nud permanent"]),
      repair: () => ipBatch(n(3), ["neigh del 172.31.0.11 dev eth0"]),
      broken: both(pods(3), pods(1)),
      first: ["stale-neighbour", "node-3", "02:00:00:00:00:77"],
    },
    {
      name: "node-3's agent SIGKILLed (checked through the agents)",
      inject: () => topo.stopProcess("agent-node-3", "SIGKILL"),
      repair: () => topo.startProcess("agent-node-3", n(3), [relayServer, "node-3", n(3), agentSocket("node-3")]).then(() => undefined),
      broken: between(pods(3), allPods).sort(),
      verdict: "inconclusive",
      first: ["agent-unreachable", "node-3", "node-3"],
      transport: "agents",
    },
    {
      name: "pod-2-1's responder stopped",
      inject: () => topo.stopProcess("pod-2-1"),
      repair: () => undefined, // the last fault: the suite ends here
      broken: [...between(allPods, ["pod-2-1"]), ...between(["pod-2-1"], allPods)].sort(),
      first: ["responder-down", "node-2", "pod-2-1 (10.244.2.3) refused the connection"],
      inconclusiveFrom: "pod-2-1",
    },
  ];

  it("the healthy network: every pair ok", async () => {
    const report = await check();
    expect(report.summary.line).toBe("0/30 pairs failed (0 NAT violations), 0 excluded");
  }, 60_000);

  it("read-only: nft, iptables (both flavours), rules, routes and links of every namespace are unchanged by an explained check", async () => {
    const namespaces = [ul, ...topo.nodes.map((x) => x.netns), ...topo.pods.map((p) => p.netns)];
    const snapshot = (): Record<string, string> =>
      Object.fromEntries(namespaces.map((ns) => [ns, [
        inNetns(ns, "nft", ["list", "ruleset"]).replace(/counter packets \d+ bytes \d+/g, "counter"),
        inNetns(ns, "iptables-nft-save", []).replace(/^#.*\n/gm, ""),
        inNetns(ns, "iptables-legacy-save", []).replace(/^#.*\n/gm, ""),
        inNetns(ns, "ip", ["rule", "show"]),
        // The kernel adds a link-local address's local route when its duplicate address detection ends: not the check.
        inNetns(ns, "ip", ["route", "show", "table", "all"]).replace(/^local fe80::.*\n/gm, ""),
        inNetns(ns, "ip", ["link", "show"]),
      ].join("\n---\n")]));
    // Two faults in place, so the check gathers evidence (it does only for failed pairs).
    inNetns(n(2), "iptables-nft", ["-t", "nat", "-A", "POSTROUTING", "-s", "10.244.2.0/24", "-d", "10.244.0.0/16", "!", "-o", "fn-br0", "-j", "MASQUERADE"]);
    ipBatch(n(1), ["route add blackhole 10.244.3.3/32"]);
    try {
      const before = snapshot();
      const report = await check();
      expect(report.results.some((r) => r.hops !== undefined)).toBe(true);
      expect(snapshot()).toEqual(before);
    } finally {
      inNetns(n(2), "iptables-nft", ["-t", "nat", "-F", "POSTROUTING"]);
      ipBatch(n(1), ["route del blackhole 10.244.3.3/32"]);
    }
  }, 90_000);

  it.each(faults.map((f, i) => [i + 1, f.name, f] as const))("fault %i: %s", async (_i, _name, fault) => {
    await waitHealthy(() => check());
    await fault.inject();
    try {
      expectExplained(await check(fault.transport === "agents" ? viaAgents : direct), fault);
    } finally {
      await fault.repair();
    }
  }, 90_000);
});
