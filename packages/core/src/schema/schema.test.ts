import { describe, expect, it } from "vitest";
import { clusterDescriptionSchema } from "./cluster-description.ts";
import { safeParseSchema } from "./issues.ts";
import { networkConfigSchema } from "./network-config.ts";
import { clusterSnapshotSchema, nodeSnapshotSchema } from "./snapshot.ts";

describe("networkConfigSchema", () => {
  it("fills defaults and canonicalises CIDRs", () => {
    expect(safeParseSchema(networkConfigSchema, { clusterCidrs: ["10.244.0.0/16", "FD00:10:244:0::/56"] }, "config")).toEqual({
      success: true,
      data: { clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], backend: "vxlan", nodeMaskIPv4: 24, nodeMaskIPv6: 64, vni: 1, vxlanPort: 8472 },
    });
  });

  it.each<[string, unknown, string]>([
    ["missing clusterCidrs", {}, 'config: key "clusterCidrs" = (missing): '],
    ["empty clusterCidrs", { clusterCidrs: [] }, 'config: key "clusterCidrs" = []: at least one cluster CIDR is required'],
    ["bad CIDR", { clusterCidrs: ["10.244.0.0/33"] }, 'config: key "clusterCidrs.0" = "10.244.0.0/33": CIDR "10.244.0.0/33" has prefix length 33; IPv4 allows 0-32'],
    ["host bits", { clusterCidrs: ["10.244.0.1/16"] }, 'config: key "clusterCidrs.0" = "10.244.0.1/16": CIDR "10.244.0.1/16" has host bits set after /16; the network is 10.244.0.0/16'],
    ["two IPv4 pools", { clusterCidrs: ["10.244.0.0/16", "10.245.0.0/16"] }, 'config: key "clusterCidrs.1" = "10.245.0.0/16": a second IPv4 cluster CIDR (10.244.0.0/16 is the first); at most one per family'],
    ["backend", { clusterCidrs: ["10.244.0.0/16"], backend: "bgp" }, 'config: key "backend" = "bgp": backend must be one of "host-gw", "vxlan", "auto"'],
    ["vni 0", { clusterCidrs: ["10.244.0.0/16"], vni: 0 }, 'config: key "vni" = 0: must be 1-16777215 (24 bits)'],
    ["vni string", { clusterCidrs: ["10.244.0.0/16"], vni: "1" }, 'config: key "vni" = "1": '],
    ["port", { clusterCidrs: ["10.244.0.0/16"], vxlanPort: 70000 }, 'config: key "vxlanPort" = 70000: must be 1-65535'],
    ["node mask /31", { clusterCidrs: ["10.244.0.0/16"], nodeMaskIPv4: 31 }, 'config: key "nodeMaskIPv4" = 31: must be 0-30'],
    ["mtu", { clusterCidrs: ["10.244.0.0/16"], mtu: 100 }, 'config: key "mtu" = 100: must be 576-65535'],
    ["unknown key", { clusterCidrs: ["10.244.0.0/16"], clusterCIDR: "10.244.0.0/16" }, 'config: key "clusterCIDR" = "10.244.0.0/16": unknown key (check its spelling)'],
    ["not an object", "10.244.0.0/16", 'config: key "(root)" = "10.244.0.0/16": '],
  ])("rejects %s naming key, value and rule", (_label, input, message) => {
    const result = safeParseSchema(networkConfigSchema, input, "config");
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe("ERR_INVALID_CONFIG");
    expect(result.error?.message).toContain(message);
  });
});

describe("nodeSnapshotSchema / clusterSnapshotSchema", () => {
  it("accepts and canonicalises a dual-stack node", () => {
    expect(nodeSnapshotSchema.parse({ name: "node-1", underlayIps: ["172.31.0.11", "FD00::0011"], podCidrs: ["10.244.1.0/24"], vtepMac: "0A:00:00:00:00:01" })).toEqual({
      name: "node-1",
      underlayIps: ["172.31.0.11", "fd00::11"],
      podCidrs: ["10.244.1.0/24"],
      vtepMac: "0a:00:00:00:00:01",
    });
    expect(nodeSnapshotSchema.parse({ name: "n", underlayIps: ["172.31.0.11"] }).podCidrs).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    ["upper-case name", { name: "Node-1", underlayIps: ["172.31.0.11"] }, 'key "name" = "Node-1": a node name must be a DNS subdomain'],
    ["no underlay IP", { name: "n", underlayIps: [] }, 'key "underlayIps" = []: a node needs an underlay IP'],
    ["bad underlay IP", { name: "n", underlayIps: ["172.31.0.256"] }, 'key "underlayIps.0" = "172.31.0.256": IP address "172.31.0.256" has octet 256'],
    ["two IPv6 underlay IPs", { name: "n", underlayIps: ["fd00::1", "fd00::2"] }, 'key "underlayIps.1" = "fd00::2": a second IPv6 underlay IP (fd00::1 is the first)'],
    ["multicast MAC", { name: "n", underlayIps: ["172.31.0.11"], vtepMac: "01:00:5e:00:00:01" }, 'key "vtepMac" = "01:00:5e:00:00:01": MAC "01:00:5e:00:00:01" is multicast'],
    ["Kubernetes spelling", { name: "n", underlayIps: ["172.31.0.11"], podCIDRs: [] }, 'key "podCIDRs" = []: unknown key'],
  ])("node: rejects %s", (_label, input, message) => {
    const result = safeParseSchema(nodeSnapshotSchema, input, "node");
    expect(result.error?.message).toContain(message);
  });

  it("cluster snapshot: reports the path of a bad node", () => {
    const result = safeParseSchema(clusterSnapshotSchema, { clusterCidrs: ["10.244.0.0/16"], nodes: [{ name: "a", underlayIps: ["1.1.1.1"] }, { name: "b", underlayIps: ["x"] }] }, "snapshot");
    expect(result.error?.message).toMatch(/^snapshot: key "nodes\.1\.underlayIps\.0" = "x": IP address "x"/);
    expect(result.error?.details?.issues).toEqual([{ path: "nodes.1.underlayIps.0", value: "x", message: expect.stringContaining(`IP address "x"`) }]);
  });
});

describe("clusterDescriptionSchema", () => {
  const valid = {
    clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"],
    nodes: [
      { name: "node-1", underlayIps: ["172.31.0.11/24"], podCidrs: ["10.244.7.0/24"] },
      { name: "node-2", underlayIps: ["172.31.0.12"] },
    ],
  };

  it("fills defaults and splits underlay addresses into IP and L2 subnet", () => {
    expect(clusterDescriptionSchema.parse(valid)).toEqual({
      clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"],
      backend: "auto",
      nodeMaskIPv4: 24,
      nodeMaskIPv6: 64,
      vni: 1,
      vxlanPort: 8472,
      mtu: 1500,
      underlayDevice: "eth0",
      vxlanDevice: "flatnet.1",
      nodes: [
        { name: "node-1", underlayIps: [{ ip: "172.31.0.11", subnet: "172.31.0.0/24" }], podCidrs: ["10.244.7.0/24"] },
        { name: "node-2", underlayIps: [{ ip: "172.31.0.12", subnet: undefined }] },
      ],
    });
  });

  it.each<[string, (input: typeof valid) => unknown, string]>([
    ["no nodes", (input) => ({ ...input, nodes: [] }), 'key "nodes" = []: a cluster needs at least one node'],
    ["duplicate names", (input) => ({ ...input, nodes: [input.nodes[0], { ...input.nodes[1], name: "node-1" }] }), 'key "nodes.1.name" = "node-1": node name "node-1" is already used by nodes.0'],
    ["shared underlay IP", (input) => ({ ...input, nodes: [input.nodes[0], { ...input.nodes[1], underlayIps: ["172.31.0.11"] }] }), 'key "nodes.1.underlayIps.0" = "172.31.0.11": underlay IP 172.31.0.11 is already node "node-1"\'s'],
    ["bad underlay prefix", (input) => ({ ...input, nodes: [{ ...input.nodes[0], underlayIps: ["172.31.0.11/40"] }] }), 'key "nodes.0.underlayIps.0" = "172.31.0.11/40": CIDR "172.31.0.11/40" has prefix length 40'],
    ["bad underlay IP", (input) => ({ ...input, nodes: [{ ...input.nodes[0], underlayIps: ["172.31.0/24"] }] }), 'key "nodes.0.underlayIps.0" = "172.31.0/24": IP address "172.31.0" has 3 dot-separated parts'],
    ["pod CIDR outside", (input) => ({ ...input, nodes: [{ ...input.nodes[0], podCidrs: ["10.99.0.0/24"] }] }), 'key "nodes.0.podCidrs.0" = "10.99.0.0/24": pod CIDR 10.99.0.0/24 is outside the cluster CIDRs (10.244.0.0/16, fd00:10:244::/56)'],
    ["pod CIDRs overlapping", (input) => ({ ...input, nodes: [input.nodes[0], { ...input.nodes[1], podCidrs: ["10.244.7.0/24"] }] }), 'key "nodes.1.podCidrs.0" = "10.244.7.0/24": pod CIDR 10.244.7.0/24 overlaps 10.244.7.0/24 of node "node-1"'],
    ["bad backend", (input) => ({ ...input, backend: "flannel" }), 'key "backend" = "flannel": backend must be one of'],
    ["long device name", (input) => ({ ...input, underlayDevice: "a-very-long-interface" }), 'key "underlayDevice" = "a-very-long-interface": an interface name is 1-15 characters: a letter or digit, then letters, digits, "_", "." or "-"'],
  ])("rejects %s", (_label, mutate, message) => {
    const result = safeParseSchema(clusterDescriptionSchema, mutate(valid), "cluster.yaml");
    expect(result.success).toBe(false);
    expect(result.error?.message).toContain(`cluster.yaml: ${message}`);
  });
});
