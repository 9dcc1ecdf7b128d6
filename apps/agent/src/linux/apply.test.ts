import type { Plan, VxlanDevice } from "@flatnet/core";
import { describe, expect, it } from "vitest";
import { renderDeviceUpdate, renderKernelBatches } from "./apply.ts";

const device: VxlanDevice = {
  name: "flatnet.1", vni: 1, port: 8472, local: "172.31.0.11", underlayFamily: "IPv4", underlayDevice: "eth0",
  mac: "0e:00:00:00:00:01", mtu: 1450, addresses: ["10.244.1.0/32"],
};
const v6Route = { family: "IPv6" as const, dst: "fd00:10:244:2::/64", via: "fd00:10:244:2::", dev: "flatnet.1", onlink: true };

describe("renderKernelBatches", () => {
  it("groups consecutive steps per tool in plan order and maps every line to its step", () => {
    const plan: Plan = {
      steps: [
        { op: "add", kind: "fdb", fdb: { mac: "0e:00:00:00:00:02", dst: "172.31.0.12", dev: "flatnet.1" } },
        { op: "add", kind: "neighbour", neighbour: { family: "IPv4", ip: "10.244.2.0", mac: "0e:00:00:00:00:02", dev: "flatnet.1" } },
        { op: "add", kind: "route", route: { family: "IPv4", dst: "10.244.2.0/24", via: "10.244.2.0", dev: "flatnet.1", onlink: true } },
        { op: "delete", kind: "fdb", fdb: { mac: "0e:00:00:00:00:03", dst: "172.31.0.13", dev: "flatnet.1" } },
      ],
    };
    const batches = renderKernelBatches(plan);
    expect(batches.map((b) => ({ tool: b.tool, lines: b.lines }))).toEqual([
      { tool: "bridge", lines: ["fdb replace 0e:00:00:00:00:02 dev flatnet.1 dst 172.31.0.12 self permanent"] },
      { tool: "ip", lines: ["neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:02 dev flatnet.1 nud permanent", "route replace 10.244.2.0/24 via 10.244.2.0 dev flatnet.1 onlink proto 77"] },
      { tool: "bridge", lines: ["fdb del 0e:00:00:00:00:03 dev flatnet.1 dst 172.31.0.13 self"] },
    ]);
    expect(batches.map((b) => b.steps)).toEqual([[plan.steps[0]], [plan.steps[1], plan.steps[2]], [plan.steps[3]]]);
  });

  it.each([
    ["replace", ["route del fd00:10:244:2::/64 proto 77", "route replace fd00:10:244:2::/64 via fd00:10:244:2:: dev flatnet.1 onlink proto 77"]],
    ["add", ["route replace fd00:10:244:2::/64 via fd00:10:244:2:: dev flatnet.1 onlink proto 77"]],
  ] as const)("an IPv6 onlink route %s deletes a route to the same dst first only when replacing", (op, lines) => {
    const [batch] = renderKernelBatches({ steps: [{ op, kind: "route", route: v6Route }] });
    expect(batch?.lines).toEqual(lines);
    expect(batch?.steps[0]?.op).toBe(op === "replace" ? "delete" : "add"); // a missing old route is success
  });
});

describe("renderDeviceUpdate", () => {
  it.each([
    ["MTU only: the MAC is not written (writing it flushes permanent neighbours)", { mtu: 1400 }, ["link set dev flatnet.1 mtu 1400 up"]],
    ["new MAC", { mac: "0e:00:00:00:00:09" }, ["link set dev flatnet.1 address 0e:00:00:00:00:09 mtu 1450 up"]],
    [
      "addresses swapped",
      { addresses: ["fd00:10:244:1::/128"] },
      ["link set dev flatnet.1 mtu 1450 up", "address replace fd00:10:244:1::/128 dev flatnet.1 nodad", "address del 10.244.1.0/32 dev flatnet.1"],
    ],
  ])("%s", (_name, change, lines) => {
    expect(renderDeviceUpdate({ ...device, ...change }, device)).toEqual(lines);
  });
});
