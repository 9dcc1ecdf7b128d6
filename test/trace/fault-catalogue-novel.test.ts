import { execFileSync } from "node:child_process";
import { inNetns, ipBatch, isRoot } from "../probe/topology.ts";
import { built } from "./lab-cli.ts";
import { between, both } from "./catalogue.ts";
import { labCatalogue, type Lab } from "./lab-catalogue.ts";

// Faults a new user made by hand on a 3 x 2 host-gw lab, none of them made by the other catalogues (docs/trace.md,
// "Tried as a new user"): iptables in the raw and mangle tables, an nft netdev ingress chain, a pod veth detached
// from the pod bridge, isolated bridge ports, a pod's default route deleted, a pod's neighbour pinned to a wrong
// MAC, one device's forwarding sysctl, a DNAT rule on the probe port, a node's underlay device MTU. Namespaces fn-nu-t-*.

if (!isRoot() || !built) console.log(`novel fault catalogue skipped: ${!isRoot() ? "needs root" : "needs the built agent (npm run build -w @flatnet/agent)"}`);

const pods = (node: number): string[] => [`pod-node${node}-1`, `pod-node${node}-2`];
const allPods = [1, 2, 3].flatMap(pods);
const others = (pod: string): string[] => allPods.filter((p) => p !== pod);
/** Pod CIDRs are not in node order: a pod's IP and host veth are read from its namespace. */
const podIp = (lab: Lab, pod: string): string =>
  (JSON.parse(inNetns(lab.ns(pod), "ip", ["-j", "-4", "addr", "show", "dev", "eth0"])) as { addr_info: { local: string }[] }[])[0]!.addr_info[0]!.local;
const hostVeth = (lab: Lab, pod: string): string => {
  const peer = Number(inNetns(lab.ns(pod), "cat", ["/sys/class/net/eth0/iflink"]).trim());
  const node = pod.replace(/^pod-(node\d+)-\d+$/, "$1");
  return (JSON.parse(inNetns(lab.ns(node), "ip", ["-j", "link", "show"])) as { ifindex: number; ifname: string }[]).find((l) => l.ifindex === peer)!.ifname;
};
const sysctl = (lab: Lab, node: string, setting: string): void => void inNetns(lab.ns(node), "sysctl", ["-qw", setting]);
/** pod-node1-2's default gateway, read before fault 6 deletes its default route, to put it back. */
let podGateway = "";

labCatalogue("host-gw", "fn-nu-t-", 2, (lab) => [
  {
    name: "iptables-nft DROP in the raw table's PREROUTING on node2, for one pod of node3",
    inject: () => void inNetns(lab.ns("node2"), "iptables-nft", ["-t", "raw", "-A", "PREROUTING", "-d", podIp(lab, "pod-node3-1"), "-j", "DROP"]),
    repair: () => void inNetns(lab.ns("node2"), "iptables-nft", ["-t", "raw", "-F", "PREROUTING"]),
    broken: both(pods(2), ["pod-node3-1"]),
    first: ["drop-rule", "node2", "iptables-nft raw PREROUTING rule 1"],
  },
  {
    name: "iptables-legacy DROP in the mangle table's FORWARD on node3, for one pod of node1",
    inject: () => void inNetns(lab.ns("node3"), "iptables-legacy", ["-t", "mangle", "-A", "FORWARD", "-s", podIp(lab, "pod-node1-2"), "-j", "DROP"]),
    repair: () => void inNetns(lab.ns("node3"), "iptables-legacy", ["-t", "mangle", "-F", "FORWARD"]),
    broken: both(["pod-node1-2"], pods(3)),
    first: ["drop-rule", "node3", "iptables-legacy mangle FORWARD rule 1"],
  },
  {
    name: "an nft netdev ingress chain on pod-node1-1's host veth dropping what the pod sends",
    inject: () => void inNetns(lab.ns("node1"), "nft", ["-f", "-"], `table netdev fn-nu-fault {\n  chain ingress { type filter hook ingress device "${hostVeth(lab, "pod-node1-1")}" priority 0; ip saddr ${podIp(lab, "pod-node1-1")} drop; }\n}\n`),
    repair: () => void inNetns(lab.ns("node1"), "nft", ["delete", "table", "netdev", "fn-nu-fault"]),
    broken: both(["pod-node1-1"], others("pod-node1-1")),
    first: ["drop-rule", "node1", "nft netdev fn-nu-fault ingress"],
  },
  {
    name: "pod-node2-1's host veth detached from the pod bridge (ip link set ... nomaster)",
    inject: () => ipBatch(lab.ns("node2"), [`link set ${hostVeth(lab, "pod-node2-1")} nomaster`]),
    repair: () => ipBatch(lab.ns("node2"), [`link set ${hostVeth(lab, "pod-node2-1")} master fn-br0`]),
    broken: both(["pod-node2-1"], others("pod-node2-1")),
    first: ["pod-port-detached", "node2", "is not a port of fn-br0"],
  },
  {
    name: "both pod ports of node3's bridge isolated (bridge link set ... isolated on)",
    inject: () => pods(3).forEach((p) => execFileSync("bridge", ["-n", lab.ns("node3"), "link", "set", "dev", hostVeth(lab, p), "isolated", "on"])),
    repair: () => pods(3).forEach((p) => execFileSync("bridge", ["-n", lab.ns("node3"), "link", "set", "dev", hostVeth(lab, p), "isolated", "off"])),
    broken: both(["pod-node3-1"], ["pod-node3-2"]),
    first: ["bridge-port-isolated", "node3", "of fn-br0 are isolated"],
  },
  {
    name: "pod-node1-2's default route deleted in its own namespace (ip -n ... route del default)",
    inject: () => {
      podGateway = (JSON.parse(inNetns(lab.ns("pod-node1-2"), "ip", ["-j", "-4", "route", "show", "default"])) as { gateway: string }[])[0]!.gateway;
      ipBatch(lab.ns("pod-node1-2"), ["route del default"]);
    },
    repair: () => ipBatch(lab.ns("pod-node1-2"), [`route add default via ${podGateway} dev eth0`]),
    // Its connected route stays: pod-node1-1 is still reached, on the same bridge.
    broken: both(["pod-node1-2"], [...pods(2), ...pods(3)]),
    first: ["pod-route-missing", "node1", /^pod-node1-2 \(netns fn-nu-t-pod-node1-2\) on node1 has no route to 10\.244\.\d+\.\d+: .* its default route via 10\.244\.\d+\.1 is missing/],
  },
  {
    name: "node2's neighbour entry for pod-node2-2 pinned to a MAC no bridge port has",
    inject: () => ipBatch(lab.ns("node2"), [`neigh replace ${podIp(lab, "pod-node2-2")} lladdr 02:00:00:00:00:42 dev fn-br0 nud permanent`]),
    repair: () => ipBatch(lab.ns("node2"), [`neigh del ${podIp(lab, "pod-node2-2")} dev fn-br0`]),
    // Bridged traffic from pod-node2-1 does not use node2's neighbour table.
    broken: both(["pod-node2-2"], [...pods(1), ...pods(3)]),
    first: ["stale-neighbour", "node2", "is pinned to 02:00:00:00:00:42"],
  },
  {
    name: "net.ipv4.conf.eth0.forwarding=0 on node3 (ip_forward stays 1)",
    inject: () => sysctl(lab, "node3", "net.ipv4.conf.eth0.forwarding=0"),
    repair: () => sysctl(lab, "node3", "net.ipv4.conf.eth0.forwarding=1"),
    broken: both(pods(3), [...pods(1), ...pods(2)]),
    first: ["forwarding-disabled", "node3", "net.ipv4.conf.eth0.forwarding is 0"],
  },
  {
    name: "iptables-nft DNAT on node2 sending the probe port of pod-node2-1 to a port nothing listens on",
    inject: () => ["tcp", "udp"].forEach((proto) => inNetns(lab.ns("node2"), "iptables-nft", ["-t", "nat", "-A", "PREROUTING", "-d", podIp(lab, "pod-node2-1"), "-p", proto, "--dport", "7471", "-j", "DNAT", "--to-destination", `${podIp(lab, "pod-node2-1")}:7499`])),
    repair: () => void inNetns(lab.ns("node2"), "iptables-nft", ["-t", "nat", "-F", "PREROUTING"]),
    broken: between(others("pod-node2-1"), ["pod-node2-1"]).sort(),
    first: ["dnat-rule", "node2", "iptables-nft nat PREROUTING rule 1"],
  },
  {
    name: "node1's eth0 at MTU 1280, below the pod MTU (full-size packets to node1's pods are lost)",
    inject: () => ipBatch(lab.ns("node1"), ["link set eth0 mtu 1280"]),
    repair: () => ipBatch(lab.ns("node1"), ["link set eth0 mtu 1500"]),
    broken: between([...pods(2), ...pods(3)], pods(1)).sort(),
    first: ["mtu-below-pod-mtu", "node1", "eth0 has MTU 1280"],
  },
]);
