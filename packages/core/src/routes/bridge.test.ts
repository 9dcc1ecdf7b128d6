import { describe, expect, it } from "vitest";
import { bridgeGateway, POD_BRIDGE } from "./bridge.ts";

describe("bridgeGateway", () => {
  it.each([
    ["10.244.1.0/24", "10.244.1.1/24"],
    ["10.244.0.0/16", "10.244.0.1/16"],
    ["10.0.0.0/30", "10.0.0.1/30"],
    ["10.0.0.0/31", "10.0.0.1/31"],
    ["fd00:10:244:1::/64", "fd00:10:244:1::1/64"],
    ["fd00::/8", "fd00::1/8"],
  ])("%s -> %s", (cidr, gateway) => {
    expect(bridgeGateway(cidr)).toBe(gateway);
  });

  it.each(["10.244.1.0", "10.244.1.0/33", "10.244.1.1/24", "bridge"])("refuses %j, naming it", (text) => {
    expect(() => bridgeGateway(text)).toThrow(text);
  });

  it("names the bridge as every node has it", () => {
    expect(POD_BRIDGE).toBe("fn-br0");
  });
});
