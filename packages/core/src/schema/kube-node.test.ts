import { describe, expect, it } from "vitest";
import { kubeNodePodCidrs, kubeNodeSchema, nodeSnapshotFromKube, type KubeNodeFields } from "./kube-node.ts";

const internal = (address: string) => ({ status: { addresses: [{ type: "InternalIP", address }] } });

describe("kubeNodePodCidrs", () => {
  it.each<[string, KubeNodeFields, string[]]>([
    ["podCIDRs", { spec: { podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"], podCIDR: "10.244.1.0/24" } }, ["10.244.1.0/24", "fd00:10:244:1::/64"]],
    ["only podCIDR", { spec: { podCIDR: "10.244.2.0/24" } }, ["10.244.2.0/24"]],
    ["empty podCIDRs: falls back to podCIDR", { spec: { podCIDRs: [], podCIDR: "10.244.3.0/24" } }, ["10.244.3.0/24"]],
    ["null podCIDRs: falls back to podCIDR", { spec: { podCIDRs: null, podCIDR: "10.244.4.0/24" } }, ["10.244.4.0/24"]],
    ["neither", { spec: { podCIDRs: [], podCIDR: "" } }, []],
    ["no spec", {}, []],
  ])("%s", (_name, node, cidrs) => expect(kubeNodePodCidrs(node)).toEqual(cidrs));
});

describe("nodeSnapshotFromKube", () => {
  it("reads pod CIDRs, underlay IPs, VTEP MAC and readiness", () => {
    const node: KubeNodeFields = {
      metadata: { name: "n1", annotations: { "flatnet.io/underlay-ips": "172.31.0.11, fd00::11", "flatnet.io/vtep-mac": "0e:00:00:00:00:01" } },
      spec: { podCIDRs: [], podCIDR: "10.244.1.0/24" },
      status: { addresses: [{ type: "InternalIP", address: "192.0.2.1" }], conditions: [{ type: "Ready", status: "False" }] },
    };
    expect(nodeSnapshotFromKube(node)).toEqual({
      success: true,
      data: { name: "n1", underlayIps: ["172.31.0.11", "fd00::11"], podCidrs: ["10.244.1.0/24"], vtepMac: "0e:00:00:00:00:01", ready: false },
    });
  });

  it("takes InternalIP addresses without the annotation, and a custom prefix", () => {
    const node: KubeNodeFields = { metadata: { name: "n2", annotations: { "x/vtep-mac": "0e:00:00:00:00:02" } }, spec: { podCIDR: "10.244.2.0/24" }, ...internal("172.31.0.12") };
    expect(nodeSnapshotFromKube(node, "x/")).toEqual({ success: true, data: { name: "n2", underlayIps: ["172.31.0.12"], podCidrs: ["10.244.2.0/24"], vtepMac: "0e:00:00:00:00:02" } });
  });

  it.each<[string, KubeNodeFields, string, RegExp]>([
    ["no pod CIDR", { metadata: { name: "n3" }, spec: { podCIDRs: [] }, ...internal("172.31.0.13") }, "ERR_NO_POD_CIDR", /node "n3" has no spec.podCIDRs/],
    ["no underlay IP", { metadata: { name: "n4" }, spec: { podCIDR: "10.244.4.0/24" } }, "ERR_NO_UNDERLAY_IP", /node "n4" has no flatnet.io\/underlay-ips annotation and no InternalIP/],
  ])("fails on %s, naming the node", (_name, node, code, message) => {
    const result = nodeSnapshotFromKube(node);
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toMatch(message);
  });
});

describe("kubeNodeSchema", () => {
  it("accepts a Node with nulls and extra fields, and refuses one without a name", () => {
    expect(kubeNodeSchema.safeParse({ metadata: { name: "n1", uid: "u" }, spec: { podCIDRs: null, taints: [] }, status: null }).success).toBe(true);
    expect(kubeNodeSchema.safeParse({ metadata: { name: "" } }).success).toBe(false);
  });
});
