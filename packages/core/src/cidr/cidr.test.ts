import { describe, expect, it } from "vitest";
import { formatIp, parseIp } from "../ip/address.ts";
import {
  asHostCidr,
  addressIndex,
  canonicalCidr,
  cidrContains,
  cidrEquals,
  cidrOf,
  cidrSize,
  cidrsOverlap,
  compareCidr,
  firstAddress,
  formatCidr,
  formatInterfaceAddress,
  isCidr,
  iterateAddresses,
  lastAddress,
  nthAddress,
  parseCidr,
  parseInterfaceAddress,
  safeParseCidr,
  safeParseInterfaceAddress,
} from "./cidr.ts";

describe("parseCidr / formatCidr", () => {
  it.each([
    { text: "0.0.0.0/0", family: "IPv4", prefix: 0, size: 1n << 32n, first: "0.0.0.0", last: "255.255.255.255" },
    { text: "10.0.0.0/8", family: "IPv4", prefix: 8, size: 1n << 24n, first: "10.0.0.0", last: "10.255.255.255" },
    { text: "10.244.1.0/24", family: "IPv4", prefix: 24, size: 256n, first: "10.244.1.0", last: "10.244.1.255" },
    { text: "10.244.1.7/32", family: "IPv4", prefix: 32, size: 1n, first: "10.244.1.7", last: "10.244.1.7" },
    { text: "255.255.255.255/32", family: "IPv4", prefix: 32, size: 1n, first: "255.255.255.255", last: "255.255.255.255" },
    { text: "::/0", family: "IPv6", prefix: 0, size: 1n << 128n, first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
    { text: "fd00:10:244:1::/64", family: "IPv6", prefix: 64, size: 1n << 64n, first: "fd00:10:244:1::", last: "fd00:10:244:1:ffff:ffff:ffff:ffff" },
    { text: "::1/128", family: "IPv6", prefix: 128, size: 1n, first: "::1", last: "::1" },
    { text: "::ffff:10.0.0.0/104", family: "IPv6", prefix: 104, size: 1n << 24n, first: "::ffff:10.0.0.0", last: "::ffff:10.255.255.255" },
  ] as const)("$text", ({ text, family, prefix, size, first, last }) => {
    const cidr = parseCidr(text);
    expect(cidr.family).toBe(family);
    expect(cidr.prefix).toBe(prefix);
    expect(formatCidr(cidr)).toBe(text);
    expect(cidrSize(cidr)).toBe(size);
    expect(formatIp(firstAddress(cidr))).toBe(first);
    expect(formatIp(lastAddress(cidr))).toBe(last);
    expect(isCidr(text)).toBe(true);
  });

  it.each([
    ["2001:DB8:0:0::/64", "2001:db8::/64"],
    ["FD00::/8", "fd00::/8"],
    ["::ffff:a00:0/104", "::ffff:10.0.0.0/104"],
  ])("canonicalises %s to %s", (text, canonical) => {
    expect(canonicalCidr(text)).toBe(canonical);
  });

  it.each([
    { text: "10.0.0.0/33", code: "ERR_INVALID_CIDR", rule: "has prefix length 33; IPv4 allows 0-32" },
    { text: "::/129", code: "ERR_INVALID_CIDR", rule: "has prefix length 129; IPv6 allows 0-128" },
    { text: "10.0.0.0/-1", code: "ERR_INVALID_CIDR", rule: "decimal number 0-32" },
    { text: "10.0.0.0/", code: "ERR_INVALID_CIDR", rule: "decimal number 0-32" },
    { text: "10.0.0.0/8/8", code: "ERR_INVALID_CIDR", rule: "decimal number 0-32" },
    { text: "10.0.0.0/ 8", code: "ERR_INVALID_CIDR", rule: "decimal number 0-32" },
    { text: "10.0.0.0/08", code: "ERR_INVALID_CIDR", rule: "leading zero" },
    { text: "10.0.0.0/0x8", code: "ERR_INVALID_CIDR", rule: "decimal number" },
    { text: "10.0.0.0", code: "ERR_INVALID_CIDR", rule: "has no prefix length" },
    { text: "", code: "ERR_INVALID_CIDR", rule: "has no prefix length" },
    { text: "010.0.0.0/8", code: "ERR_INVALID_CIDR", rule: "leading zero" },
    { text: "/8", code: "ERR_INVALID_CIDR", rule: "is empty" },
    { text: "fe80::%eth0/64", code: "ERR_INVALID_CIDR", rule: "zone index" },
    { text: "10.0.0.1/8", code: "ERR_HOST_BITS_SET", rule: "has host bits set after /8; the network is 10.0.0.0/8" },
    { text: "10.244.1.255/23", code: "ERR_HOST_BITS_SET", rule: "the network is 10.244.0.0/23" },
    { text: "fd00::1/64", code: "ERR_HOST_BITS_SET", rule: "the network is fd00::/64" },
    { text: "::1/0", code: "ERR_HOST_BITS_SET", rule: "the network is ::/0" },
  ])("rejects $text ($code)", ({ text, code, rule }) => {
    const result = safeParseCidr(text);
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toContain(`CIDR ${JSON.stringify(text)}`);
    expect(result.error?.message).toContain(rule);
    expect(() => parseCidr(text)).toThrow(rule);
    expect(isCidr(text)).toBe(false);
  });

  it("wraps the address error as the cause", () => {
    const result = safeParseCidr("1.2.3.256/24");
    expect(result.error?.cause).toMatchObject({ code: "ERR_INVALID_IP" });
  });

  it.each([
    ["10.0.0.1/8", "10.0.0.0/8"],
    ["10.244.1.255/23", "10.244.0.0/23"],
    ["fd00::1/64", "fd00::/64"],
    ["255.255.255.255/0", "0.0.0.0/0"],
    ["10.0.0.0/8", "10.0.0.0/8"],
  ])("maskHostBits: %s -> %s", (text, network) => {
    expect(formatCidr(parseCidr(text, { maskHostBits: true }))).toBe(network);
  });

  it("maskHostBits still rejects a bad prefix", () => {
    expect(safeParseCidr("10.0.0.1/40", { maskHostBits: true }).error?.code).toBe("ERR_INVALID_CIDR");
  });
});

describe("interface addresses", () => {
  it.each([
    ["10.244.1.5/24", "10.244.1.5", 24],
    ["10.244.1.0/24", "10.244.1.0", 24],
    ["fd00:10:244:1::5/64", "fd00:10:244:1::5", 64],
    ["::ffff:10.0.0.1/128", "::ffff:10.0.0.1", 128],
  ] as const)("%s", (text, address, prefix) => {
    const parsed = parseInterfaceAddress(text);
    expect(formatIp(parsed.address)).toBe(address);
    expect(parsed.prefix).toBe(prefix);
    expect(formatInterfaceAddress(parsed)).toBe(text);
  });

  it.each(["10.244.1.5", "10.244.1.5/33", "fd00::5/129", "x/24"])("rejects %s", (text) => {
    expect(safeParseInterfaceAddress(text).error?.code).toBe("ERR_INVALID_CIDR");
    expect(() => parseInterfaceAddress(text)).toThrow(JSON.stringify(text));
  });
});

describe("contains / overlaps / equals", () => {
  it.each([
    ["10.0.0.0/8", "10.1.2.3", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["10.0.0.0/8", "9.255.255.255", false],
    ["10.0.0.0/8", "10.255.255.255", true],
    ["0.0.0.0/0", "255.255.255.255", true],
    ["10.0.0.1/32", "10.0.0.1", true],
    ["10.0.0.1/32", "10.0.0.2", false],
    ["::/0", "10.0.0.1", false],
    ["::ffff:0.0.0.0/96", "10.0.0.1", false],
    ["::ffff:0.0.0.0/96", "::ffff:10.0.0.1", true],
    ["fd00::/64", "fd00::ffff:ffff:ffff:ffff", true],
    ["fd00::/64", "fd00:0:0:1::", false],
  ] as const)("%s contains address %s: %s", (cidr, ip, expected) => {
    expect(cidrContains(parseCidr(cidr), parseIp(ip))).toBe(expected);
  });

  it.each([
    ["10.0.0.0/8", "10.244.0.0/16", true, true],
    ["10.244.0.0/16", "10.0.0.0/8", false, true],
    ["10.0.0.0/8", "10.0.0.0/8", true, true],
    ["10.0.0.0/24", "10.0.1.0/24", false, false],
    ["10.0.0.0/23", "10.0.1.0/24", true, true],
    ["0.0.0.0/0", "10.0.0.0/8", true, true],
    ["0.0.0.0/0", "::/0", false, false],
    ["::/0", "fd00::/64", true, true],
    ["fd00::/64", "fd00:0:0:1::/64", false, false],
    ["fd00::/63", "fd00:0:0:1::/64", true, true],
    ["10.0.0.1/32", "10.0.0.1/32", true, true],
  ] as const)("%s vs %s: contains=%s overlaps=%s", (a, b, contains, overlaps) => {
    expect(cidrContains(parseCidr(a), parseCidr(b))).toBe(contains);
    expect(cidrsOverlap(parseCidr(a), parseCidr(b))).toBe(overlaps);
    expect(cidrsOverlap(parseCidr(b), parseCidr(a))).toBe(overlaps);
    expect(cidrEquals(parseCidr(a), parseCidr(b))).toBe(a === b);
  });

  it("sorts CIDRs by family, network, prefix", () => {
    const sorted = ["fd00::/64", "10.0.0.0/16", "10.0.0.0/8", "9.0.0.0/8", "::/0"].map((t) => parseCidr(t)).sort(compareCidr).map(formatCidr);
    expect(sorted).toEqual(["9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16", "::/0", "fd00::/64"]);
  });
});

describe("nthAddress / addressIndex / cidrOf / iterateAddresses", () => {
  it.each([
    ["10.244.1.0/24", 0, "10.244.1.0"],
    ["10.244.1.0/24", 1, "10.244.1.1"],
    ["10.244.1.0/24", 255, "10.244.1.255"],
    ["10.244.1.0/24", -1, "10.244.1.255"],
    ["10.244.1.0/24", -256, "10.244.1.0"],
    ["10.0.0.7/32", 0, "10.0.0.7"],
    ["fd00::/64", 1n, "fd00::1"],
    ["fd00::/64", (1n << 64n) - 1n, "fd00::ffff:ffff:ffff:ffff"],
    ["::/0", -1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ] as const)("%s [%s] = %s", (cidr, n, expected) => {
    const parsed = parseCidr(cidr);
    const ip = nthAddress(parsed, n);
    expect(formatIp(ip)).toBe(expected);
    const index = addressIndex(parsed, ip);
    expect(index).toBe(BigInt(n) < 0n ? BigInt(n) + cidrSize(parsed) : BigInt(n));
  });

  it.each([
    ["10.244.1.0/24", 256],
    ["10.244.1.0/24", -257],
    ["10.0.0.7/32", 1],
    ["fd00::/64", 1n << 64n],
  ] as const)("%s [%s] is out of range", (cidr, n) => {
    expect(() => nthAddress(parseCidr(cidr), n)).toThrow("is outside CIDR");
  });

  it.each([1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60])("offset %s is not an integer", (n) => {
    expect(() => nthAddress(parseCidr("::/0"), n)).toThrow(`offset ${n} is not an integer`);
  });

  it("addressIndex is undefined outside the CIDR", () => {
    expect(addressIndex(parseCidr("10.0.0.0/24"), parseIp("10.0.1.0"))).toBeUndefined();
    expect(addressIndex(parseCidr("10.0.0.0/24"), parseIp("::ffff:10.0.0.1"))).toBeUndefined();
  });

  it.each([
    ["10.244.1.77", 24, "10.244.1.0/24"],
    ["10.244.1.77", 0, "0.0.0.0/0"],
    ["10.244.1.77", 32, "10.244.1.77/32"],
    ["fd00::1:2:3:4", 64, "fd00::/64"],
    ["fd00::1:2:3:4", 128, "fd00::1:2:3:4/128"],
  ] as const)("cidrOf(%s, %d) = %s", (ip, prefix, expected) => {
    expect(formatCidr(cidrOf(parseIp(ip), prefix))).toBe(expected);
  });

  it("iterates every address in order", () => {
    expect([...iterateAddresses(parseCidr("10.0.0.252/30"))].map(formatIp)).toEqual(["10.0.0.252", "10.0.0.253", "10.0.0.254", "10.0.0.255"]);
    expect([...iterateAddresses(parseCidr("::/128"))].map(formatIp)).toEqual(["::"]);
    const huge = iterateAddresses(parseCidr("fd00::/64"));
    expect(formatIp(huge.next().value as never)).toBe("fd00::");
  });
});

describe("asHostCidr", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1/32"],
    ["fd00::1", "fd00::1/128"],
    ["10.0.0.0/8", "10.0.0.0/8"],
  ])("%s -> %s", (text, expected) => expect(asHostCidr(text)).toBe(expected));
});
