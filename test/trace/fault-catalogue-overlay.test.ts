import { execFileSync } from "node:child_process";
import { expect } from "vitest";
import { inNetns, ipBatch, isRoot } from "../probe/topology.ts";
import { built, flatnet } from "./lab-cli.ts";
import { between, both, type Fault } from "./catalogue.ts";
import { labCatalogue, type Lab } from "./lab-catalogue.ts";

// The tracer's fault catalogue on the overlay paths: a `flatnet lab` with real agents, once with the vxlan backend
// (namespaces fn-tx-v-*) and once with auto, whose two L2 segments are joined by a router (fn-tx-a-*). Faults of
// those paths only, made by hand (bridge FDB, neighbours, nft on the underlay bridge, link MTU, sysctl, ip route,
// iptables-nft). A fault in a node's VXLAN state is made with that node's agent stopped, or it would repair it.

if (!isRoot() || !built) console.log(`overlay fault catalogue skipped: ${!isRoot() ? "needs root" : "needs the built agent (npm run build -w @flatnet/agent)"}`);

const [P1, P2, P3] = ["pod-node1-1", "pod-node2-1", "pod-node3-1"] as const;

const vtepMac = (netns: string): string => JSON.parse(inNetns(netns, "ip", ["-j", "link", "show", "dev", "flatnet.1"]))[0].address as string;
/** node2's VTEP address as node1's flatnet.1 neighbours hold it (pod CIDRs are not in node order). */
const vtepOfNode2 = (lab: Lab): string =>
  (JSON.parse(inNetns(lab.ns("node1"), "ip", ["-j", "neigh", "show", "dev", "flatnet.1"])) as { dst: string; lladdr: string }[]).find((n) => n.lladdr === vtepMac(lab.ns("node2")))!.dst;
/** A fault in node1's VXLAN state, made while node1's agent is stopped; repaired by starting the agent again. */
function withoutAgent(lab: Lab, fault: Omit<Fault, "inject" | "repair"> & { make(): void }): Fault {
  return {
    ...fault,
    inject: () => {
      expect(flatnet(["lab", "kill-agent", "node1", "--state-dir", lab.stateDir]).status).toBe(0);
      fault.make();
    },
    repair: () => void expect(flatnet(["lab", "start-agent", "node1", "--state-dir", lab.stateDir]).status).toBe(0),
  };
}

labCatalogue("vxlan", "fn-tx-v-", 1, (lab) => [
  withoutAgent(lab, {
    name: "a wrong FDB entry on node1's flatnet.1: node2's VTEP MAC sent to 172.31.0.99",
    make: () => void execFileSync("bridge", ["-n", lab.ns("node1"), "fdb", "replace", vtepMac(lab.ns("node2")), "dev", "flatnet.1", "dst", "172.31.0.99", "self", "permanent"]),
    broken: both([P1], [P2]),
    first: ["wrong-fdb", "node1", "dst 172.31.0.99"],
  }),
  withoutAgent(lab, {
    name: "node2's FDB entry missing on node1's flatnet.1",
    make: () => void execFileSync("bridge", ["-n", lab.ns("node1"), "fdb", "del", vtepMac(lab.ns("node2")), "dev", "flatnet.1", "dst", "172.31.0.12", "self"]),
    broken: both([P1], [P2]),
    first: ["missing-fdb", "node1", "flatnet.1 has no FDB entry"],
  }),
  withoutAgent(lab, {
    name: "a stale VTEP neighbour on node1: node2's VTEP address pinned to a MAC no VTEP has",
    make: () => ipBatch(lab.ns("node1"), [`neigh replace ${vtepOfNode2(lab)} lladdr 02:00:00:00:00:99 dev flatnet.1 nud permanent`]),
    broken: both([P1], [P2]),
    first: ["stale-vtep-mac", "node1", "-> 02:00:00:00:00:99, node2's VXLAN device is"],
  }),
  {
    name: "UDP 8472 to node2 dropped by an nft rule of the underlay bridge",
    inject: () => void inNetns(lab.ns("underlay"), "nft", ["-f", "-"], "table bridge fn-tx-fault {\n  chain forward { type filter hook forward priority 0; ip daddr 172.31.0.12 udp dport 8472 drop; }\n}\n"),
    repair: () => void inNetns(lab.ns("underlay"), "nft", ["delete", "table", "bridge", "fn-tx-fault"]),
    broken: both([P2], [P1, P3]),
    first: ["drop-rule", "underlay", "bridge fn-tx-fault forward"],
  },
  {
    name: "the underlay bridge port of node2 at MTU 1480, below the 1500 a 1450-byte pod packet needs in VXLAN",
    inject: () => ipBatch(lab.ns("underlay"), ["link set ul-node2 mtu 1480"]),
    repair: () => ipBatch(lab.ns("underlay"), ["link set ul-node2 mtu 1500"]),
    // Measured: node2's full-size datagrams die where they enter the bridge (the port's receive MTU); the other way they pass.
    broken: between([P2], [P1, P3]),
    first: ["mtu-below-pod-mtu", "underlay", "bridge port ul-node2 (to node2) has MTU 1480"],
  },
]);

// auto: node1 and node3 share segment 0 (host-gw between them), node2 is on segment 1 behind the router.
labCatalogue("auto", "fn-tx-a-", 1, (lab) => [
  {
    name: "net.ipv4.ip_forward=0 on the router",
    inject: () => void inNetns(lab.ns("router"), "sysctl", ["-qw", "net.ipv4.ip_forward=0"]),
    repair: () => void inNetns(lab.ns("router"), "sysctl", ["-qw", "net.ipv4.ip_forward=1"]),
    broken: both([P2], [P1, P3]),
    first: ["forwarding-disabled", "router", "net.ipv4.ip_forward is 0"],
  },
  {
    name: "a blackhole route to node2's underlay address on the router",
    inject: () => ipBatch(lab.ns("router"), ["route add blackhole 172.31.1.12/32"]),
    repair: () => ipBatch(lab.ns("router"), ["route del blackhole 172.31.1.12/32"]),
    broken: both([P2], [P1, P3]),
    first: ["blackhole-route", "router", "blackhole 172.31.1.12"],
  },
  {
    name: "iptables-nft FORWARD policy DROP on the router",
    inject: () => void inNetns(lab.ns("router"), "iptables-nft", ["-P", "FORWARD", "DROP"]),
    repair: () => void inNetns(lab.ns("router"), "iptables-nft", ["-P", "FORWARD", "ACCEPT"]),
    broken: both([P2], [P1, P3]),
    first: ["chain-policy-drop", "router", "iptables-nft filter FORWARD policy DROP"],
  },
]);
