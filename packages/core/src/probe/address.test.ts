import { describe, expect, it } from "vitest";
import { cidrIncludes, probeAddressFamily, sameAddress, unmapAddress } from "./address.ts";

describe("unmapAddress", () => {
  it.each([
    ["10.244.1.2", "10.244.1.2"],
    ["::ffff:10.244.1.2", "10.244.1.2"],
    ["::FFFF:10.244.1.2", "10.244.1.2"],
    ["::ffff:0af4:0102", "10.244.1.2"],
    ["0:0:0:0:0:ffff:10.244.1.2", "10.244.1.2"],
    ["fd00:10:244:1:0:0:0:2", "fd00:10:244:1::2"],
    ["FD00::0002", "fd00::2"],
    ["fe80::1%eth0", "fe80::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
    ["::ffff:1.2.3", "::ffff:1.2.3"], // not an address: returned as is
    ["not-an-ip", "not-an-ip"],
  ])("%s -> %s", (input, expected) => {
    expect(unmapAddress(input)).toBe(expected);
  });
});

describe("sameAddress / probeAddressFamily", () => {
  it.each([
    ["::ffff:172.31.0.11", "172.31.0.11", true],
    ["10.0.0.1", "10.0.0.2", false],
    ["fd00::1", "fd00:0::1", true],
    ["::ffff:10.0.0.1", "::10.0.0.1", false],
    [" 10.0.0.1 ", "::ffff:10.0.0.1", true],
    ["fe80::1%eth0", "fe80::1", true],
    ["not-an-ip", "not-an-ip", true], // unparsable text is compared as text
    ["not-an-ip", "10.0.0.1", false],
  ])("%s vs %s", (a, b, same) => {
    expect(sameAddress(a, b)).toBe(same);
  });
  it.each([
    ["10.0.0.1", "IPv4"],
    ["::1", "IPv6"],
    ["256.0.0.1", undefined],
    ["01.2.3.4", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
  ])("family of %s is %s", (ip, family) => {
    expect(probeAddressFamily(ip)).toBe(family);
  });
});

describe("cidrIncludes", () => {
  it.each([
    ["10.244.1.0/24", "10.244.1.7", true],
    ["10.244.1.0/24", "10.244.2.7", false],
    ["10.244.1.0/24", "::ffff:10.244.1.7", true],
    ["0.0.0.0/0", "192.0.2.1", true],
    ["10.244.1.7/32", "10.244.1.7", true],
    ["10.244.1.7/32", "10.244.1.8", false],
    ["fd00:10:244:1::/64", "fd00:10:244:1::9", true],
    ["fd00:10:244:1::/64", "fd00:10:244:2::9", false],
    ["::/0", "fd00::1", true],
    ["fd00::1/128", "fd00::1", true],
    ["10.244.1.0/24", "fd00::1", false],
    ["10.244.1.0/33", "10.244.1.1", false],
    ["garbage", "10.244.1.0/24", false],
    ["10.244.1.9/24", "10.244.1.7", true], // host bits of the CIDR are ignored
    ["10.244.1.0/24", "fe80::1%eth0", false],
    ["10.244.1.0/24", "10.244.1.256", false],
    ["garbage", "10.0.0.1", false],
  ])("%s contains %s: %s", (cidr, ip, inside) => {
    expect(cidrIncludes(cidr, ip)).toBe(inside);
  });
});
