import { describe, expect, it } from "vitest";
import { clusterCidrs, planSegments, segmentOf, underlayIpsOf } from "./addressing.ts";

describe("lab addressing", () => {
  it("plans one segment for host-gw and vxlan", () => {
    expect(planSegments("vxlan", false)).toEqual([{ index: 0, bridge: "br0", subnets: ["172.31.0.0/24"], gateways: [] }]);
    expect(planSegments("host-gw", true)).toEqual([
      { index: 0, bridge: "br0", subnets: ["172.31.0.0/24", "fd00:172:31::/64"], gateways: [] },
    ]);
  });

  it("plans two segments joined by a router for auto", () => {
    expect(planSegments("auto", true)).toEqual([
      { index: 0, bridge: "br0", subnets: ["172.31.0.0/24", "fd00:172:31::/64"], gateways: ["172.31.0.254", "fd00:172:31::254"] },
      { index: 1, bridge: "br1", subnets: ["172.31.1.0/24", "fd00:172:31:1::/64"], gateways: ["172.31.1.254", "fd00:172:31:1::254"] },
    ]);
  });

  it.each([
    ["auto", 1, 0],
    ["auto", 2, 1],
    ["auto", 3, 0],
    ["auto", 4, 1],
    ["host-gw", 2, 0],
    ["vxlan", 3, 0],
  ] as const)("%s puts node%i on segment %i", (backend, index, segment) => {
    expect(segmentOf(backend, index)).toBe(segment);
  });

  it.each([
    [0, 1, false, ["172.31.0.11"]],
    [1, 2, true, ["172.31.1.12", "fd00:172:31:1::12"]],
    [0, 200, false, ["172.31.0.210"]],
  ])("segment %i node%i dual-stack %s -> %j", (segment, index, dualStack, expected) => {
    expect(underlayIpsOf(segment, index, dualStack)).toEqual(expected);
  });

  it("uses 10.244.0.0/16 and fd00:10:244::/56", () => {
    expect(clusterCidrs(false)).toEqual(["10.244.0.0/16"]);
    expect(clusterCidrs(true)).toEqual(["10.244.0.0/16", "fd00:10:244::/56"]);
  });
});
