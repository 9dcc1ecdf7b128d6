import { describe, expect, it } from "vitest";
import { renderPlan, renderStep } from "./render.ts";
import type { Plan, PlanStep, VxlanDevice } from "./types.ts";

const device: VxlanDevice = {
  name: "flatnet.1",
  vni: 1,
  port: 8472,
  local: "172.31.0.11",
  underlayFamily: "IPv4",
  underlayDevice: "eth0",
  mac: "0a:00:00:00:00:01",
  mtu: 1450,
  addresses: ["10.244.1.0/32", "fd00:10:244:1::/128"],
};
const CREATE = [
  "link add flatnet.1 address 0a:00:00:00:00:01 mtu 1450 type vxlan id 1 local 172.31.0.11 dev eth0 dstport 8472 nolearning",
  "link set dev flatnet.1 up",
  "address replace 10.244.1.0/32 dev flatnet.1",
  "address replace fd00:10:244:1::/128 dev flatnet.1 nodad",
];

describe("renderStep", () => {
  it.each<[string, PlanStep, string[]]>([
    ["device create", { op: "create", kind: "vxlan-device", device }, CREATE],
    ["device replace", { op: "replace", kind: "vxlan-device", device }, ["link del dev flatnet.1", ...CREATE]],
    ["device delete", { op: "delete", kind: "vxlan-device", device }, ["link del dev flatnet.1"]],
    [
      "device update",
      { op: "update", kind: "vxlan-device", device: { ...device, mtu: 1400, addresses: ["10.244.1.0/32", "fd00:10:244:9::/128"] }, previous: device },
      ["link set dev flatnet.1 mtu 1400 up", "address replace fd00:10:244:9::/128 dev flatnet.1 nodad", "address del fd00:10:244:1::/128 dev flatnet.1"],
    ],
    [
      "device update with a new MAC",
      { op: "update", kind: "vxlan-device", device: { ...device, mac: "0a:00:00:00:00:aa" }, previous: device },
      ["link set dev flatnet.1 address 0a:00:00:00:00:aa mtu 1450 up"],
    ],
    ["neighbour add", { op: "add", kind: "neighbour", neighbour: { family: "IPv4", ip: "10.244.2.0", mac: "0a:00:00:00:00:02", dev: "flatnet.1" } }, ["neigh replace 10.244.2.0 lladdr 0a:00:00:00:00:02 dev flatnet.1 nud permanent"]],
    ["neighbour replace", { op: "replace", kind: "neighbour", neighbour: { family: "IPv6", ip: "fd00:10:244:2::", mac: "0a:00:00:00:00:02", dev: "flatnet.1" } }, ["neigh replace fd00:10:244:2:: lladdr 0a:00:00:00:00:02 dev flatnet.1 nud permanent"]],
    ["neighbour delete", { op: "delete", kind: "neighbour", neighbour: { family: "IPv4", ip: "10.244.2.0", mac: "0a:00:00:00:00:02", dev: "flatnet.1" } }, ["neigh del 10.244.2.0 dev flatnet.1"]],
    ["fdb add", { op: "add", kind: "fdb", fdb: { mac: "0a:00:00:00:00:02", dst: "172.31.0.12", dev: "flatnet.1" } }, ["fdb replace 0a:00:00:00:00:02 dev flatnet.1 dst 172.31.0.12 self permanent"]],
    ["fdb delete", { op: "delete", kind: "fdb", fdb: { mac: "0a:00:00:00:00:02", dst: "fd00::12", dev: "flatnet.1" } }, ["fdb del 0a:00:00:00:00:02 dev flatnet.1 dst fd00::12 self"]],
    ["host-gw route add", { op: "add", kind: "route", route: { family: "IPv4", dst: "10.244.2.0/24", via: "172.31.0.12", dev: "eth0", onlink: false } }, ["route replace 10.244.2.0/24 via 172.31.0.12 dev eth0 proto 77"]],
    ["vxlan route replace", { op: "replace", kind: "route", route: { family: "IPv6", dst: "fd00:10:244:2::/64", via: "fd00:10:244:2::", dev: "flatnet.1", onlink: true } }, ["route replace fd00:10:244:2::/64 via fd00:10:244:2:: dev flatnet.1 onlink proto 77"]],
    ["route delete", { op: "delete", kind: "route", route: { family: "IPv4", dst: "10.244.2.0/24", via: "10.244.2.0", dev: "flatnet.1", onlink: true } }, ["route del 10.244.2.0/24 via 10.244.2.0 dev flatnet.1 onlink proto 77"]],
  ])("%s", (_label, step, lines) => {
    expect(renderStep(step)).toEqual(lines);
  });
});

describe("renderPlan", () => {
  it("groups consecutive steps of one tool into a batch, keeping plan order", () => {
    const plan: Plan = {
      steps: [
        { op: "create", kind: "vxlan-device", device },
        { op: "add", kind: "fdb", fdb: { mac: "0a:00:00:00:00:02", dst: "172.31.0.12", dev: "flatnet.1" } },
        { op: "add", kind: "fdb", fdb: { mac: "0a:00:00:00:00:03", dst: "172.31.1.13", dev: "flatnet.1" } },
        { op: "add", kind: "neighbour", neighbour: { family: "IPv4", ip: "10.244.2.0", mac: "0a:00:00:00:00:02", dev: "flatnet.1" } },
        { op: "add", kind: "route", route: { family: "IPv4", dst: "10.244.2.0/24", via: "10.244.2.0", dev: "flatnet.1", onlink: true } },
        { op: "delete", kind: "fdb", fdb: { mac: "0a:00:00:00:00:09", dst: "172.31.0.19", dev: "flatnet.1" } },
      ],
    };
    expect(renderPlan(plan)).toEqual([
      { tool: "ip", lines: CREATE },
      {
        tool: "bridge",
        lines: ["fdb replace 0a:00:00:00:00:02 dev flatnet.1 dst 172.31.0.12 self permanent", "fdb replace 0a:00:00:00:00:03 dev flatnet.1 dst 172.31.1.13 self permanent"],
      },
      {
        tool: "ip",
        lines: ["neigh replace 10.244.2.0 lladdr 0a:00:00:00:00:02 dev flatnet.1 nud permanent", "route replace 10.244.2.0/24 via 10.244.2.0 dev flatnet.1 onlink proto 77"],
      },
      { tool: "bridge", lines: ["fdb del 0a:00:00:00:00:09 dev flatnet.1 dst 172.31.0.19 self"] },
    ]);
  });

  it("an empty plan renders no batch", () => {
    expect(renderPlan({ steps: [] })).toEqual([]);
  });
});
