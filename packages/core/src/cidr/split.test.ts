import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cidrContains, cidrsOverlap, cidrSize, formatCidr, parseCidr } from "./cidr.ts";
import { iterateSubnets, nthSubnet, splitCidr, subnetCount } from "./split.ts";

describe("splitCidr", () => {
  it.each([
    ["10.0.0.0/23", 24, ["10.0.0.0/24", "10.0.1.0/24"]],
    ["10.0.0.0/24", 24, ["10.0.0.0/24"]],
    ["10.0.0.0/30", 32, ["10.0.0.0/32", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"]],
    ["0.0.0.0/0", 2, ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"]],
    ["fd00:10:244::/62", 64, ["fd00:10:244::/64", "fd00:10:244:1::/64", "fd00:10:244:2::/64", "fd00:10:244:3::/64"]],
    ["::/0", 1, ["::/1", "8000::/1"]],
    ["::fffe/127", 128, ["::fffe/128", "::ffff/128"]],
  ] as const)("%s into /%d", (cidr, prefix, expected) => {
    expect(splitCidr(parseCidr(cidr), prefix).map(formatCidr)).toEqual(expected);
    expect(subnetCount(parseCidr(cidr), prefix)).toBe(BigInt(expected.length));
  });

  it.each([
    ["10.0.0.0/16", 8, "must be 16-32"],
    ["10.0.0.0/16", 33, "must be 16-32"],
    ["fd00::/48", 129, "must be 48-128"],
    ["10.0.0.0/16", 24.5, "must be 16-32"],
  ] as const)("rejects %s into /%s", (cidr, prefix, rule) => {
    expect(() => splitCidr(parseCidr(cidr), prefix)).toThrow(rule);
  });

  it("refuses to materialise more than SPLIT_LIMIT subnets but iterates them lazily", () => {
    const cidr = parseCidr("fd00::/32");
    expect(() => splitCidr(cidr, 64)).toThrow("gives 4294967296 subnets");
    const lazy = iterateSubnets(cidr, 64);
    expect(formatCidr(lazy.next().value as never)).toBe("fd00::/64");
    expect(formatCidr(lazy.next().value as never)).toBe("fd00:0:0:1::/64");
    expect(splitCidr(parseCidr("10.0.0.0/8"), 24)).toHaveLength(65_536);
  });

  it.each([
    ["10.244.0.0/16", 24, 0, "10.244.0.0/24"],
    ["10.244.0.0/16", 24, 255, "10.244.255.0/24"],
    ["fd00:10:244::/48", 64, 65_535, "fd00:10:244:ffff::/64"],
    ["fd00::/32", 64, 4_294_967_295n, "fd00:0:ffff:ffff::/64"],
  ] as const)("nthSubnet(%s, /%d, %s) = %s", (cidr, prefix, index, expected) => {
    expect(formatCidr(nthSubnet(parseCidr(cidr), prefix, index))).toBe(expected);
  });

  it.each([
    ["10.244.0.0/16", 24, 256],
    ["10.244.0.0/16", 24, -1],
  ] as const)("nthSubnet(%s, /%d, %s) is out of range", (cidr, prefix, index) => {
    expect(() => nthSubnet(parseCidr(cidr), prefix, index)).toThrow("is outside 0-255");
  });

  it("subnets tile the parent: inside it, disjoint, sizes add up (property)", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
        fc.integer({ min: 0, max: 128 }),
        fc.integer({ min: 0, max: 6 }),
        (v4, raw, rawPrefix, extra) => {
          const bits = v4 ? 32 : 128;
          const prefix = rawPrefix % (bits + 1);
          const sub = Math.min(bits, prefix + extra);
          const value = raw & ((1n << BigInt(bits)) - 1n);
          const parent = parseCidr(`${v4 ? formatV4(value) : "::"}/0`, { maskHostBits: true });
          const cidr = { ...parent, network: value & ~((1n << BigInt(bits - prefix)) - 1n), prefix };
          const parts = splitCidr(cidr, sub);
          expect(BigInt(parts.length) * cidrSize(parts[0]!)).toBe(cidrSize(cidr));
          for (let i = 0; i < parts.length; i++) {
            expect(cidrContains(cidr, parts[i]!)).toBe(true);
            if (i > 0) expect(cidrsOverlap(parts[i - 1]!, parts[i]!)).toBe(false);
            expect(parseCidr(formatCidr(parts[i]!))).toEqual(parts[i]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 255n).toString()).join(".");
}
