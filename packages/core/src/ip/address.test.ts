import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalIp, formatIp, ipFamilyOf, ipFromValue, isIp, parseIp, safeParseIp } from "./address.ts";

describe("parseIp / formatIp", () => {
  it.each([
    { text: "0.0.0.0", family: "IPv4", value: 0n, canonical: "0.0.0.0" },
    { text: "255.255.255.255", family: "IPv4", value: 0xffffffffn, canonical: "255.255.255.255" },
    { text: "10.244.1.5", family: "IPv4", value: 0x0af40105n, canonical: "10.244.1.5" },
    { text: "::", family: "IPv6", value: 0n, canonical: "::" },
    { text: "::1", family: "IPv6", value: 1n, canonical: "::1" },
    { text: "1::", family: "IPv6", value: 1n << 112n, canonical: "1::" },
    { text: "2001:0DB8:0000:0000:0000:0000:0000:0001", family: "IPv6", value: 0x20010db8000000000000000000000001n, canonical: "2001:db8::1" },
    { text: "2001:db8:0:0:1:0:0:1", family: "IPv6", value: 0x20010db8000000000001000000000001n, canonical: "2001:db8::1:0:0:1" },
    { text: "2001:db8:0:1:1:1:1:1", family: "IPv6", value: 0x20010db8000000010001000100010001n, canonical: "2001:db8:0:1:1:1:1:1" },
    { text: "1:0:0:2:0:0:0:3", family: "IPv6", value: 0x00010000000000020000000000000003n, canonical: "1:0:0:2::3" },
    { text: "1:2:3:4:5:6:7::", family: "IPv6", value: 0x00010002000300040005000600070000n, canonical: "1:2:3:4:5:6:7:0" },
    { text: "::2:3:4:5:6:7:8", family: "IPv6", value: 0x00000002000300040005000600070008n, canonical: "0:2:3:4:5:6:7:8" },
    { text: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", family: "IPv6", value: (1n << 128n) - 1n, canonical: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
    { text: "::ffff:10.0.0.1", family: "IPv6", value: 0xffff0a000001n, canonical: "::ffff:10.0.0.1" },
    { text: "::FFFF:a00:1", family: "IPv6", value: 0xffff0a000001n, canonical: "::ffff:10.0.0.1" },
    { text: "::ffff:0.0.0.0", family: "IPv6", value: 0xffff00000000n, canonical: "::ffff:0.0.0.0" },
    { text: "::1.2.3.4", family: "IPv6", value: 0x01020304n, canonical: "::102:304" },
    { text: "64:ff9b::192.0.2.33", family: "IPv6", value: 0x0064ff9b0000000000000000c0000221n, canonical: "64:ff9b::c000:221" },
    { text: "fd00:10:244:1::", family: "IPv6", value: 0xfd000010024400010000000000000000n, canonical: "fd00:10:244:1::" },
  ])("$text -> $canonical", ({ text, family, value, canonical }) => {
    const ip = parseIp(text);
    expect(ip).toEqual({ family, value });
    expect(formatIp(ip)).toBe(canonical);
    expect(parseIp(canonical)).toEqual(ip);
    expect(canonicalIp(text)).toBe(canonical);
  });

  it.each([
    { text: "", rule: "is empty" },
    { text: " 10.0.0.1", rule: "whitespace" },
    { text: "10.0.0.1\n", rule: "whitespace" },
    { text: "10.0.0", rule: "has 3 dot-separated parts" },
    { text: "10.0.0.1.2", rule: "has 5 dot-separated parts" },
    { text: "10..0.1", rule: "empty octet" },
    { text: "10.0.0.", rule: "empty octet" },
    { text: "10.0.0.256", rule: "octet 256; IPv4 octets are 0-255" },
    { text: "1000.0.0.1", rule: "0-255" },
    { text: "010.0.0.1", rule: "leading zero" },
    { text: "10.0.0.00", rule: "leading zero" },
    { text: "0x0a.0.0.1", rule: "decimal digits only" },
    { text: "10.0.0.-1", rule: "decimal digits only" },
    { text: "10.0.0.+1", rule: "decimal digits only" },
    { text: "167772161", rule: "has 1 dot-separated parts" },
    { text: "10.0.0.1/24", rule: "has a prefix length" },
    { text: "1::2::3", rule: "more than one" },
    { text: ":::", rule: "more than one" },
    { text: "1:2:3:4:5:6:7", rule: "has 7 groups" },
    { text: "1:2:3:4:5:6:7:8:9", rule: "has 9 groups" },
    { text: "1:2:3:4::5:6:7:8", rule: "at least one zero group" },
    { text: "12345::", rule: "1-4 hex digits" },
    { text: "g::1", rule: "hex digits only" },
    { text: ":1:2:3:4:5:6:7", rule: "empty group" },
    { text: "1:2:3:4:5:6:7:", rule: "empty group" },
    { text: ":1::", rule: "empty group" },
    { text: "fe80::1%eth0", rule: "zone index" },
    { text: "[::1]", rule: "bracketed" },
    { text: "::1.2.3.4:5", rule: "embedded IPv4" },
    { text: "::ffff:1.2.3.04", rule: "leading zero" },
    { text: "::ffff:1.2.3", rule: "has 3 dot-separated parts" },
    { text: "1.2.3.4::", rule: "embedded IPv4" },
  ])("rejects $text ($rule)", ({ text, rule }) => {
    const result = safeParseIp(text);
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe("ERR_INVALID_IP");
    expect(result.error?.message).toContain(JSON.stringify(text));
    expect(result.error?.message).toContain(rule);
    expect(() => parseIp(text)).toThrow(rule);
    expect(isIp(text)).toBe(false);
  });

  it("throws a FlatnetError carrying the code", () => {
    let caught: unknown;
    try {
      parseIp("1.2.3.999");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(caught).toMatchObject({ name: "FlatnetError", code: "ERR_INVALID_IP", details: { value: "1.2.3.999" } });
  });

  it.each([
    { text: "10.0.0.1", family: "IPv6", actual: "IPv4" },
    { text: "::1", family: "IPv4", actual: "IPv6" },
    { text: "::ffff:10.0.0.1", family: "IPv4", actual: "IPv6" },
  ] as const)("rejects $text when $family is required", ({ text, family, actual }) => {
    const result = safeParseIp(text, family);
    expect(result.error).toMatchObject({ code: "ERR_FAMILY_MISMATCH", details: { expected: family, actual } });
    expect(isIp(text, family)).toBe(false);
    expect(isIp(text, actual)).toBe(true);
  });
});

describe("ipFamilyOf", () => {
  it.each([
    ["10.0.0.1", "IPv4"],
    ["10.0.0.0/8", "IPv4"],
    ["::", "IPv6"],
    ["fd00::/64", "IPv6"],
    ["::ffff:1.2.3.4", "IPv6"],
    ["", undefined],
    ["010.0.0.1", undefined],
    ["eth0", undefined],
    ["10.0.0.5/24", "IPv4"],
    ["::/128", "IPv6"],
    ["1.2.3.4/", undefined],
    ["1.2.3.4/33", undefined],
    ["::/129", undefined],
    ["1.2.3.4/08", undefined],
  ])("%s -> %s", (text, family) => {
    expect(ipFamilyOf(text)).toBe(family);
  });
});

describe("ipFromValue", () => {
  it.each([
    { family: "IPv4", value: 0n, text: "0.0.0.0" },
    { family: "IPv4", value: 0xffffffff, text: "255.255.255.255" },
    { family: "IPv6", value: (1n << 128n) - 1n, text: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
  ] as const)("$family $value -> $text", ({ family, value, text }) => {
    expect(formatIp(ipFromValue(family, value))).toBe(text);
  });

  it.each([
    { family: "IPv4", value: -1n },
    { family: "IPv4", value: 1n << 32n },
    { family: "IPv6", value: 1n << 128n },
  ] as const)("rejects $family $value", ({ family, value }) => {
    expect(() => ipFromValue(family, value)).toThrow(/outside the IPv[46] address space/);
  });

  it("refuses to format an out-of-range value (a broken invariant)", () => {
    expect(() => formatIp({ family: "IPv4", value: 1n << 32n })).toThrow("invariant");
  });
});

describe("round trip (property)", () => {
  it("formatIp output parses back to the same address, and is stable", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v4, raw) => {
        const ip = v4 ? ipFromValue("IPv4", raw & 0xffffffffn) : ipFromValue("IPv6", raw);
        const text = formatIp(ip);
        expect(parseIp(text)).toEqual(ip);
        expect(canonicalIp(text)).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it("compresses exactly the longest zero run of two or more groups (RFC 5952 4.2)", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, 0, 1, 0xabcd), { minLength: 8, maxLength: 8 }), (groups) => {
        const value = groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
        if (value >> 32n === 0xffffn) return;
        const text = formatIp({ family: "IPv6", value });
        let longest = 0;
        for (let i = 0, run = 0; i < 8; i++) longest = Math.max(longest, (run = groups[i] === 0 ? run + 1 : 0));
        if (longest >= 2) {
          expect(text.split("::")).toHaveLength(2);
          expect(text.split(/::|:/).filter((g) => g !== "")).toHaveLength(8 - longest);
        } else {
          expect(text).not.toContain("::");
          expect(text.split(":")).toHaveLength(8);
        }
        expect(parseIp(text).value).toBe(value);
      }),
      { numRuns: 300 },
    );
  });
});
