import { describe, expect, it } from "vitest";
import { computeNodeNetwork } from "./compute.ts";
import type { ClusterSnapshot, DesiredNetwork, NetworkOptions, NodeSnapshot } from "./types.ts";

const MAC1 = "0a:00:00:00:00:01";
const MAC2 = "0a:00:00:00:00:02";
const MAC3 = "0a:00:00:00:00:03";

const node1: NodeSnapshot = { name: "node-1", underlayIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"], vtepMac: MAC1 };
const node2: NodeSnapshot = { name: "node-2", underlayIps: ["172.31.0.12"], podCidrs: ["10.244.2.0/24", "fd00:10:244:2::/64"], vtepMac: MAC2 };
const node3: NodeSnapshot = { name: "node-3", underlayIps: ["172.31.1.13"], podCidrs: ["10.244.3.0/24", "fd00:10:244:3::/64"], vtepMac: MAC3 };

function cluster(...nodes: NodeSnapshot[]): ClusterSnapshot {
  return { clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], nodes };
}

function options(overrides: Partial<NetworkOptions> = {}): NetworkOptions {
  return {
    backend: "vxlan",
    vni: 1,
    vxlanPort: 8472,
    underlayDevice: "eth0",
    underlayMtu: 1500,
    underlaySubnets: ["172.31.0.0/24"],
    vxlanDevice: "flatnet.1",
    ...overrides,
  };
}

function compute(snapshot: ClusterSnapshot, overrides: Partial<NetworkOptions> = {}, self = "node-1"): DesiredNetwork {
  const result = computeNodeNetwork(snapshot, self, options(overrides));
  if (!result.success) throw new Error(`unexpected failure: ${result.error.message}`);
  return result.data;
}

const device = {
  name: "flatnet.1",
  vni: 1,
  port: 8472,
  local: "172.31.0.11",
  underlayFamily: "IPv4",
  underlayDevice: "eth0",
  mac: MAC1,
  mtu: 1450,
  addresses: ["10.244.1.0/32", "fd00:10:244:1::/128"],
} as const;

describe("computeNodeNetwork: backends", () => {
  it("host-gw: one route per peer family via its underlay IP, no device, full underlay MTU", () => {
    const peer2 = { ...node2, underlayIps: ["172.31.0.12", "fd00::12"] };
    expect(compute(cluster(node3, { ...node1, underlayIps: ["172.31.0.11", "fd00::11"] }, peer2), { backend: "host-gw", underlaySubnets: [] })).toEqual({
      node: "node-1",
      podMtu: 1500,
      podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
      routes: [
        { family: "IPv4", dst: "10.244.2.0/24", via: "172.31.0.12", dev: "eth0", onlink: false },
        { family: "IPv6", dst: "fd00:10:244:2::/64", via: "fd00::12", dev: "eth0", onlink: false },
        { family: "IPv4", dst: "10.244.3.0/24", via: "172.31.1.13", dev: "eth0", onlink: false },
      ],
      neighbours: [],
      fdb: [],
      peers: [
        { node: "node-2", family: "IPv4", podCidr: "10.244.2.0/24", mode: "host-gw" },
        { node: "node-2", family: "IPv6", podCidr: "fd00:10:244:2::/64", mode: "host-gw" },
        { node: "node-3", family: "IPv4", podCidr: "10.244.3.0/24", mode: "host-gw" },
      ],
      skipped: [
        {
          node: "node-3",
          family: "IPv6",
          code: "ERR_PEER_NO_UNDERLAY_FOR_FAMILY",
          message: 'node "node-3" has an IPv6 pod CIDR but no IPv6 underlay IP for a host-gw route',
        },
      ],
    });
  });

  it("vxlan: neighbour, one FDB row per peer and an onlink route per family; device with MTU - 50", () => {
    expect(compute(cluster(node1, node2))).toEqual({
      node: "node-1",
      podMtu: 1450,
      podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
      vxlan: device,
      routes: [
        { family: "IPv4", dst: "10.244.2.0/24", via: "10.244.2.0", dev: "flatnet.1", onlink: true },
        { family: "IPv6", dst: "fd00:10:244:2::/64", via: "fd00:10:244:2::", dev: "flatnet.1", onlink: true },
      ],
      neighbours: [
        { family: "IPv4", ip: "10.244.2.0", mac: MAC2, dev: "flatnet.1" },
        { family: "IPv6", ip: "fd00:10:244:2::", mac: MAC2, dev: "flatnet.1" },
      ],
      fdb: [{ mac: MAC2, dst: "172.31.0.12", dev: "flatnet.1" }],
      peers: [
        { node: "node-2", family: "IPv4", podCidr: "10.244.2.0/24", mode: "vxlan" },
        { node: "node-2", family: "IPv6", podCidr: "fd00:10:244:2::/64", mode: "vxlan" },
      ],
      skipped: [],
    });
  });

  it("auto: host-gw to the peer on this node's L2 subnet, vxlan to the peer on another", () => {
    const desired = compute(cluster(node1, node2, node3), { backend: "auto" });
    expect(desired.routes).toEqual([
      { family: "IPv4", dst: "10.244.2.0/24", via: "172.31.0.12", dev: "eth0", onlink: false },
      { family: "IPv6", dst: "fd00:10:244:2::/64", via: "fd00:10:244:2::", dev: "flatnet.1", onlink: true },
      { family: "IPv4", dst: "10.244.3.0/24", via: "10.244.3.0", dev: "flatnet.1", onlink: true },
      { family: "IPv6", dst: "fd00:10:244:3::/64", via: "fd00:10:244:3::", dev: "flatnet.1", onlink: true },
    ]);
    expect(desired.fdb).toEqual([
      { mac: MAC2, dst: "172.31.0.12", dev: "flatnet.1" },
      { mac: MAC3, dst: "172.31.1.13", dev: "flatnet.1" },
    ]);
    expect(desired.neighbours.map((entry) => entry.ip)).toEqual(["fd00:10:244:2::", "10.244.3.0", "fd00:10:244:3::"]);
    expect(desired.vxlan).toEqual(device);
    // auto keeps the VXLAN MTU even when every peer is adjacent: a pod's MTU cannot follow later joins.
    expect(compute(cluster(node1, node2), { backend: "auto" }).podMtu).toBe(1450);
  });

  it("auto with an IPv6 underlay subnet: IPv6 host-gw, IPv4 over the VXLAN device", () => {
    const self = { ...node1, underlayIps: ["fd00::11"] };
    const peer = { ...node2, underlayIps: ["fd00::12"] };
    const desired = compute(cluster(self, peer), { backend: "auto", underlaySubnets: ["fd00::/64"] });
    expect(desired.podMtu).toBe(1430);
    expect(desired.vxlan).toEqual({ ...device, local: "fd00::11", underlayFamily: "IPv6", mtu: 1430 });
    expect(desired.routes).toEqual([
      { family: "IPv4", dst: "10.244.2.0/24", via: "10.244.2.0", dev: "flatnet.1", onlink: true },
      { family: "IPv6", dst: "fd00:10:244:2::/64", via: "fd00::12", dev: "eth0", onlink: false },
    ]);
    expect(desired.fdb).toEqual([{ mac: MAC2, dst: "fd00::12", dev: "flatnet.1" }]);
  });

  it.each([
    ["IPv4 underlay", ["172.31.0.11"], 9000, 8950],
    ["IPv6 underlay (70 bytes)", ["fd00::11", "172.31.0.11"], 1500, 1430],
    ["IPv4 first of two", ["172.31.0.11", "fd00::11"], 1500, 1450],
  ])("pod MTU with %s", (_label, underlayIps, underlayMtu, podMtu) => {
    const desired = compute(cluster({ ...node1, underlayIps }), { underlayMtu });
    expect(desired.podMtu).toBe(podMtu);
    expect(desired.vxlan?.mtu).toBe(podMtu);
  });

  it("uses vtepMacFor(name) for nodes that publish no MAC, canonicalises published MACs and CIDRs", () => {
    const desired = compute(
      cluster({ ...node1, vtepMac: undefined }, { name: "node-2", underlayIps: ["172.31.0.12"], podCidrs: ["FD00:10:244:2:0::/64"], vtepMac: "0A:00:00:00:00:02" }),
    );
    expect(desired.vxlan?.mac).toBe("16:e3:91:2d:58:86");
    expect(desired.neighbours).toEqual([{ family: "IPv6", ip: "fd00:10:244:2::", mac: MAC2, dev: "flatnet.1" }]);
    expect(desired.routes[0]?.dst).toBe("fd00:10:244:2::/64");
  });
});

describe("computeNodeNetwork: peers with bad data are skipped, never fatal", () => {
  const base = [node1, node2];
  it.each<[string, NodeSnapshot, { family?: string; code: string; message: string }[], number, Partial<NetworkOptions>?]>([
    ["no pod CIDR", { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: [] }, [{ code: "ERR_PEER_NO_POD_CIDR", message: 'node "bad" has no pod CIDR yet' }], 0],
    [
      "bad underlay IP",
      { name: "bad", underlayIps: ["172.31.0.300"], podCidrs: ["10.244.9.0/24"] },
      [{ code: "ERR_PEER_INVALID_UNDERLAY_IP", message: 'node "bad" underlay IP "172.31.0.300" is invalid: ' }],
      0,
    ],
    [
      "two IPv4 underlay IPs",
      { name: "bad", underlayIps: ["172.31.0.20", "172.31.0.21"], podCidrs: ["10.244.9.0/24"] },
      [{ code: "ERR_PEER_INVALID_UNDERLAY_IP", message: 'node "bad" has two IPv4 underlay IPs (172.31.0.20, 172.31.0.21); at most one per family' }],
      0,
    ],
    [
      "this node's own underlay IP",
      { name: "bad", underlayIps: ["172.31.0.11"], podCidrs: ["10.244.9.0/24"] },
      [{ code: "ERR_PEER_INVALID_UNDERLAY_IP", message: `node "bad" underlay IP 172.31.0.11 is this node's own underlay IP` }],
      0,
    ],
    [
      "bad pod CIDR",
      { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: ["10.244.9.1/24"] },
      [{ code: "ERR_PEER_INVALID_POD_CIDR", message: 'node "bad" pod CIDR "10.244.9.1/24" is invalid: ' }],
      0,
    ],
    [
      "pod CIDR outside the cluster CIDR (that family only)",
      { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: ["10.99.0.0/24", "fd00:10:244:9::/64"], vtepMac: "0a:00:00:00:00:09" },
      [{ family: "IPv4", code: "ERR_PEER_POD_CIDR_OUTSIDE_CLUSTER", message: 'node "bad" pod CIDR 10.99.0.0/24 is outside the cluster CIDR 10.244.0.0/16' }],
      1,
    ],
    [
      "pod CIDR overlapping another peer's (both skipped)",
      { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: ["10.244.2.128/25"], vtepMac: "0a:00:00:00:00:09" },
      [
        { family: "IPv4", code: "ERR_PEER_POD_CIDR_OVERLAP", message: 'pod CIDR 10.244.2.128/25 of node "bad" overlaps the pod CIDR of node "node-2"' },
        { family: "IPv4", code: "ERR_PEER_POD_CIDR_OVERLAP", message: 'pod CIDR 10.244.2.0/24 of node "node-2" overlaps the pod CIDR of node "bad"' },
      ],
      -1,
    ],
    [
      "pod CIDR inside this node's",
      { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: ["10.244.1.128/25"], vtepMac: "0a:00:00:00:00:09" },
      [{ family: "IPv4", code: "ERR_PEER_POD_CIDR_OVERLAP", message: 'pod CIDR 10.244.1.128/25 of node "bad" overlaps the pod CIDR of node "node-1"' }],
      0,
    ],
    [
      "no underlay IP of the VXLAN device's family",
      { name: "bad", underlayIps: ["fd00::20"], podCidrs: ["10.244.9.0/24"], vtepMac: "0a:00:00:00:00:09" },
      [{ family: "IPv4", code: "ERR_PEER_NO_UNDERLAY_FOR_FAMILY", message: 'node "bad" has no IPv4 underlay IP, the VXLAN device\'s underlay family' }],
      0,
    ],
    [
      "multicast VTEP MAC",
      { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: ["10.244.9.0/24"], vtepMac: "01:00:5e:00:00:01" },
      [{ family: "IPv4", code: "ERR_PEER_INVALID_MAC", message: 'node "bad": MAC "01:00:5e:00:00:01" is multicast (first octet\'s low bit set); a VTEP MAC must be unicast' }],
      0,
    ],
    [
      "VTEP MAC shared with another peer",
      { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: ["10.244.9.0/24"], vtepMac: MAC2 },
      [
        { family: "IPv4", code: "ERR_PEER_DUPLICATE_MAC", message: `node "bad" VTEP MAC ${MAC2} is also the VTEP MAC of "node-2"` },
        { family: "IPv4", code: "ERR_PEER_DUPLICATE_MAC", message: `node "node-2" VTEP MAC ${MAC2} is also the VTEP MAC of "bad"` },
        { family: "IPv6", code: "ERR_PEER_DUPLICATE_MAC", message: `node "node-2" VTEP MAC ${MAC2} is also the VTEP MAC of "bad"` },
      ],
      -2,
    ],
    [
      "VTEP MAC equal to this node's",
      { name: "bad", underlayIps: ["172.31.0.20"], podCidrs: ["10.244.9.0/24"], vtepMac: MAC1 },
      [{ family: "IPv4", code: "ERR_PEER_DUPLICATE_MAC", message: `node "bad" VTEP MAC ${MAC1} is also the VTEP MAC of "node-1"` }],
      0,
    ],
    [
      "host-gw peer off this node's L2 subnet",
      { name: "bad", underlayIps: ["172.31.7.20"], podCidrs: ["10.244.9.0/24"] },
      [
        {
          family: "IPv4",
          code: "ERR_PEER_NOT_ADJACENT",
          message: 'node "bad" underlay IP 172.31.7.20 is outside this node\'s L2 subnets (172.31.0.0/24); host-gw needs L2 adjacency (use backend "auto" or "vxlan")',
        },
      ],
      0,
      { backend: "host-gw" },
    ],
    [
      "duplicate node name",
      { ...node2, underlayIps: ["172.31.0.99"] },
      [{ code: "ERR_PEER_DUPLICATE_NAME", message: 'node "node-2" appears more than once in the snapshot; only the first is used' }],
      0,
    ],
  ])("%s", (_label, bad, skipped, extraFamilies, overrides = {}) => {
    const healthy = compute(cluster(...base), overrides);
    const desired = compute(cluster(...base, bad), overrides);
    const added = desired.skipped.filter((entry) => !healthy.skipped.some((old) => JSON.stringify(old) === JSON.stringify(entry)));
    expect(added).toEqual(skipped.map((entry) => ({ node: expect.stringMatching(/^(bad|node-2)$/), ...entry, message: expect.stringContaining(entry.message) })));
    expect(desired.peers.length - healthy.peers.length).toBe(extraFamilies);
  });

  it("a peer that is not ready keeps its routes (its pods may still serve)", () => {
    expect(compute(cluster(node1, { ...node2, ready: false })).routes).toHaveLength(2);
  });

  it("survives junk a sloppy adapter might pass (missing lists, null nodes)", () => {
    const junk = { name: "junk" } as unknown as NodeSnapshot;
    const desired = compute({ clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], nodes: [node1, null as unknown as NodeSnapshot, junk, node2] });
    expect(desired.skipped).toEqual([{ node: "junk", code: "ERR_PEER_NO_POD_CIDR", message: 'node "junk" has no pod CIDR yet' }]);
    expect(desired.routes).toHaveLength(2);
  });
});

describe("computeNodeNetwork: failures about this node or the options", () => {
  it.each<[string, ClusterSnapshot, Partial<NetworkOptions>, string, string]>([
    ["self missing", cluster(node2), {}, "ERR_NOT_FOUND", 'node "node-1" is not in the cluster snapshot (1 nodes)'],
    ["self without pod CIDR", cluster({ ...node1, podCidrs: [] }), {}, "ERR_INVALID_STATE", 'this node "node-1" has no pod CIDR yet'],
    ["self without underlay IP", cluster({ ...node1, underlayIps: [] }), {}, "ERR_INVALID_STATE", 'this node "node-1" has no underlay IP'],
    ["self with a bad underlay IP", cluster({ ...node1, underlayIps: ["1.2.3"] }), {}, "ERR_INVALID_STATE", 'this node "node-1" has an invalid underlay IP: '],
    ["self pod CIDR outside", cluster({ ...node1, podCidrs: ["10.1.0.0/24"] }), {}, "ERR_INVALID_STATE", 'this node "node-1" has pod CIDR "10.1.0.0/24" outside every cluster CIDR'],
    ["self multicast MAC", cluster({ ...node1, vtepMac: "ff:ff:ff:ff:ff:ff" }), {}, "ERR_INVALID_STATE", 'this node "node-1" has an unusable VTEP MAC: MAC "ff:ff:ff:ff:ff:ff" is multicast'],
    ["bad cluster CIDR", { clusterCidrs: ["10.244.0.0/33"], nodes: [node1] }, {}, "ERR_INVALID_CONFIG", 'cluster CIDR "10.244.0.0/33" is invalid: '],
    ["no cluster CIDR", { clusterCidrs: [], nodes: [node1] }, {}, "ERR_INVALID_CONFIG", "the cluster has no cluster CIDR"],
    ["bad backend", cluster(node1), { backend: "bgp" as "auto" }, "ERR_INVALID_CONFIG", 'backend "bgp" is not one of "host-gw", "vxlan", "auto"'],
    ["vni 0", cluster(node1), { vni: 0 }, "ERR_INVALID_CONFIG", "vni 0 is outside 1-16777215 (24 bits)"],
    ["vni 2^24", cluster(node1), { vni: 16_777_216 }, "ERR_INVALID_CONFIG", "vni 16777216 is outside 1-16777215"],
    ["port 0", cluster(node1), { vxlanPort: 0 }, "ERR_INVALID_CONFIG", "vxlanPort 0 is outside 1-65535"],
    ["mtu 100", cluster(node1), { underlayMtu: 100 }, "ERR_INVALID_CONFIG", "underlayMtu 100 is outside 576-65535"],
    ["mtu too small for IPv6 pods after VXLAN", cluster(node1), { underlayMtu: 1300 }, "ERR_INVALID_CONFIG", "underlay MTU 1300 leaves a pod MTU of 1250; IPv6 needs at least 1280"],
    ["device name too long", cluster(node1), { vxlanDevice: "flatnet-vxlan-0001" }, "ERR_INVALID_CONFIG", 'vxlanDevice "flatnet-vxlan-0001" is refused: an interface name is 1-15 characters'],
    ["iproute2 comment sign in a device name", cluster(node1), { underlayDevice: "eth0#" }, "ERR_INVALID_CONFIG", 'underlayDevice "eth0#" is refused: an interface name is 1-15 characters'],
    ["same device twice", cluster(node1), { vxlanDevice: "eth0" }, "ERR_INVALID_CONFIG", 'vxlanDevice and underlayDevice are both "eth0"'],
    ["bad underlay subnet", cluster(node1), { underlaySubnets: ["172.31.0.0/40"] }, "ERR_INVALID_CONFIG", 'underlay subnet "172.31.0.0/40" is invalid: '],
  ])("%s", (_label, snapshot, overrides, code, message) => {
    const result = computeNodeNetwork(snapshot, "node-1", options(overrides));
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toContain(message);
  });

  it("accepts an underlay subnet written as an interface address (host bits set)", () => {
    expect(compute(cluster(node1, node2), { backend: "auto", underlaySubnets: ["172.31.0.11/24"] }).peers[0]?.mode).toBe("host-gw");
  });
});

describe("computeNodeNetwork: parse memo", () => {
  it("gives the same result with a cold and a warm memo, and for reordered input", async () => {
    const { clearParseCache } = await import("./parse-cache.ts");
    const snapshot = cluster(node3, node1, node2);
    clearParseCache();
    const cold = compute(snapshot, { backend: "auto" });
    const warm = compute(snapshot, { backend: "auto" });
    const reordered = compute(cluster(node2, node3, node1), { backend: "auto" });
    expect(warm).toEqual(cold);
    expect(reordered).toEqual(cold);
  });
});
