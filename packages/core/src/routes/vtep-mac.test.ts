import { describe, expect, it } from "vitest";
import { safeParseMac, safeParseVtepMac, vtepMacFor } from "./vtep-mac.ts";

describe("vtepMacFor", () => {
  it.each([
    ["node-1", "16:e3:91:2d:58:86"],
    ["node-2", "e2:b6:96:30:3a:bd"],
    ["", "4a:8b:1a:ee:8d:83"],
  ])("%j -> %s (stable across runs and runtimes)", (name, mac) => {
    expect(vtepMacFor(name)).toBe(mac);
  });

  it("is locally administered, unicast, well-formed and distinct for 20,000 names", () => {
    const seen = new Set<string>();
    for (let index = 0; index < 20_000; index++) {
      const mac = vtepMacFor(`worker-${index}.example.internal`);
      expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const first = Number.parseInt(mac.slice(0, 2), 16);
      expect(first & 0x02).toBe(0x02);
      expect(first & 0x01).toBe(0);
      seen.add(mac);
    }
    expect(seen.size).toBe(20_000);
  });

  it("depends on every character of the name", () => {
    expect(vtepMacFor("node-10")).not.toBe(vtepMacFor("node-01"));
    expect(vtepMacFor("a".repeat(63))).not.toBe(vtepMacFor(`${"a".repeat(62)}b`));
  });
});

describe("safeParseMac / safeParseVtepMac", () => {
  it.each([
    ["0a:58:0a:f4:01:01", "0a:58:0a:f4:01:01"],
    ["0A:58:0A:F4:01:01", "0a:58:0a:f4:01:01"],
    ["fe:ff:ff:ff:ff:ff", "fe:ff:ff:ff:ff:ff"],
  ])("accepts %s as %s", (input, canonical) => {
    expect(safeParseVtepMac(input)).toEqual({ success: true, data: canonical });
  });

  it.each([
    ["0a:58:0a:f4:01", "is not six colon-separated hex octets"],
    ["0a-58-0a-f4-01-01", "is not six colon-separated hex octets"],
    ["0a:58:0a:f4:01:0g", "is not six colon-separated hex octets"],
    ["", "is not six colon-separated hex octets"],
    ["01:00:5e:00:00:01", "is multicast"],
    ["ff:ff:ff:ff:ff:ff", "is multicast"],
    ["00:00:00:00:00:00", "is all zeros"],
  ])("rejects %j (%s)", (input, rule) => {
    const result = safeParseVtepMac(input);
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe("ERR_INVALID_MAC");
    expect(result.error?.message).toContain(rule);
    expect(result.error?.message.toLowerCase()).toContain(`"${input.toLowerCase()}"`);
  });

  it("safeParseMac accepts multicast and zero MACs (they are valid MACs, not valid VTEPs)", () => {
    expect(safeParseMac("00:00:00:00:00:00")).toEqual({ success: true, data: "00:00:00:00:00:00" });
    expect(safeParseMac("FF:FF:FF:FF:FF:FF")).toEqual({ success: true, data: "ff:ff:ff:ff:ff:ff" });
  });
});
