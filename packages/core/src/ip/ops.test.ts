import { describe, expect, it } from "vitest";
import { formatIp, parseIp } from "./address.ts";
import { addToIp, compareIp, ipEquals, isIpv4Mapped, mapIpv4ToIpv6, parseHostIp, sameHost, unmapIp } from "./ops.ts";

describe("compareIp / ipEquals", () => {
  it.each([
    ["10.0.0.1", "10.0.0.2", -1],
    ["10.0.0.2", "10.0.0.1", 1],
    ["10.0.0.1", "10.0.0.1", 0],
    ["255.255.255.255", "::", -1],
    ["::", "0.0.0.0", 1],
    ["::ffff:10.0.0.1", "10.0.0.1", 1],
    ["fd00::1", "fd00::1:0", -1],
  ] as const)("%s vs %s -> %d", (a, b, expected) => {
    expect(compareIp(parseIp(a), parseIp(b))).toBe(expected);
    expect(ipEquals(parseIp(a), parseIp(b))).toBe(expected === 0);
  });

  it("sorts mixed families", () => {
    const sorted = ["fd00::2", "10.0.0.2", "::1", "10.0.0.1"].map((t) => parseIp(t)).sort(compareIp).map(formatIp);
    expect(sorted).toEqual(["10.0.0.1", "10.0.0.2", "::1", "fd00::2"]);
  });
});

describe("addToIp", () => {
  it.each([
    ["10.0.0.255", 1, "10.0.1.0"],
    ["10.0.1.0", -1, "10.0.0.255"],
    ["0.0.0.0", 0xffffffff, "255.255.255.255"],
    ["::ffff", 1n, "::1:0"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["::1", -1, "::"],
  ] as const)("%s + %s = %s", (start, offset, expected) => {
    expect(formatIp(addToIp(parseIp(start), offset))).toBe(expected);
  });

  it.each([
    ["255.255.255.255", 1],
    ["0.0.0.0", -1],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1n],
    ["::", -1n],
  ] as const)("%s + %s leaves the address space", (start, offset) => {
    expect(() => addToIp(parseIp(start), offset)).toThrow("leaves the address space");
  });

  it("rejects a fractional offset", () => {
    expect(() => addToIp(parseIp("10.0.0.1"), 0.5)).toThrow("offset 0.5 is not an integer");
  });
});

describe("IPv4-mapped IPv6", () => {
  it.each([
    ["::ffff:10.0.0.1", true, "10.0.0.1"],
    ["::ffff:0.0.0.0", true, "0.0.0.0"],
    ["::ffff:255.255.255.255", true, "255.255.255.255"],
    ["::fffe:10.0.0.1", false, "::fffe:a00:1"],
    ["::1:ffff:10.0.0.1", false, "::1:ffff:a00:1"],
    ["::10.0.0.1", false, "::a00:1"],
    ["10.0.0.1", false, "10.0.0.1"],
  ] as const)("%s mapped=%s unmaps to %s", (text, mapped, unmapped) => {
    const ip = parseIp(text);
    expect(isIpv4Mapped(ip)).toBe(mapped);
    expect(formatIp(unmapIp(ip))).toBe(unmapped);
    expect(formatIp(parseHostIp(text))).toBe(unmapped);
  });

  it("maps IPv4 to IPv6 and back", () => {
    const v4 = parseIp("192.0.2.1");
    expect(formatIp(mapIpv4ToIpv6(v4))).toBe("::ffff:192.0.2.1");
    expect(unmapIp(mapIpv4ToIpv6(v4))).toEqual(v4);
    expect(mapIpv4ToIpv6(parseIp("fd00::1"))).toEqual(parseIp("fd00::1"));
  });

  it.each([
    ["::ffff:10.244.1.5", "10.244.1.5", true],
    ["10.244.1.5", "::FFFF:a f4:105", false],
    ["10.244.1.5", "::ffff:af4:105", true],
    ["10.244.1.5", "10.244.1.6", false],
    ["fd00::1", "fd00:0::1", true],
    ["bogus", "bogus", false],
  ] as const)("sameHost(%s, %s) = %s", (a, b, same) => {
    expect(sameHost(a, b)).toBe(same);
  });
});
