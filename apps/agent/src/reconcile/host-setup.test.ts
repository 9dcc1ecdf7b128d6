import { type ClusterSnapshot, computeNodeNetwork, type NetworkOptions } from "@flatnet/core";
import { describe, expect, it } from "vitest";
import { hostSetupFor } from "./host-setup.ts";

const OPTIONS: NetworkOptions = {
  backend: "vxlan",
  vni: 1,
  vxlanPort: 8472,
  underlayDevice: "eth0",
  underlayMtu: 1500,
  underlaySubnets: ["172.31.0.0/24"],
  vxlanDevice: "flatnet.1",
};

const node = (i: number, underlayIps = [`172.31.0.${10 + i}`]) => ({ name: `node-${i}`, underlayIps, podCidrs: [`10.244.${i}.0/24`] });

function setupOf(cluster: ClusterSnapshot) {
  const desired = computeNodeNetwork(cluster, "node-1", OPTIONS);
  if (!desired.success) throw new Error(desired.error.message);
  return { setup: hostSetupFor(cluster, desired.data, true), skipped: desired.data.skipped.map((s) => s.node) };
}

describe("hostSetupFor uses only the peers computeNodeNetwork accepted", () => {
  it.each([
    ["two IPv4 underlay IPs (issue 14.4)", ["8.8.8.8", "1.1.1.1"]],
    ["an underlay IP that is not an address", ["not-an-ip"]],
  ])("a peer skipped for %s adds nothing to the masquerade exemptions", (_, underlayIps) => {
    const { setup, skipped } = setupOf({ clusterCidrs: ["10.244.0.0/16"], nodes: [node(1), node(2), node(3, underlayIps)] });
    expect(skipped).toEqual(["node-3"]);
    expect(setup.nodeIps).toEqual(["172.31.0.11", "172.31.0.12"]);
  });

  it("a duplicate node name counts once, as the first entry computeNodeNetwork used", () => {
    const { setup } = setupOf({ clusterCidrs: ["10.244.0.0/16"], nodes: [node(1), node(2), { ...node(2, ["1.1.1.1"]) }] });
    expect(setup.nodeIps).toEqual(["172.31.0.11", "172.31.0.12"]);
  });

  it("every accepted peer and this node are exempt", () => {
    const { setup, skipped } = setupOf({ clusterCidrs: ["10.244.0.0/16"], nodes: [node(1), node(2), node(3)] });
    expect(skipped).toEqual([]);
    expect(setup).toEqual({
      clusterCidrs: ["10.244.0.0/16"],
      bridgeGateways: ["10.244.1.1/24"],
      podMtu: 1450,
      masquerade: true,
      nodeIps: ["172.31.0.11", "172.31.0.12", "172.31.0.13"],
    });
  });
});
