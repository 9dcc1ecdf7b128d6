import { FlatnetError } from "../errors.ts";
import { type IpAddress, maxIpValue, parseIp, safeParseIp, toInteger } from "./address.ts";

const MAPPED_PREFIX = 0xffffn << 32n;

/** Orders addresses: every IPv4 before every IPv6, then by numeric value. Returns -1, 0 or 1. */
export function compareIp(a: IpAddress, b: IpAddress): -1 | 0 | 1 {
  if (a.family !== b.family) return a.family === "IPv4" ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** True when both addresses have the same family and value (`::ffff:1.2.3.4` is not `1.2.3.4`; see `unmapIp`). */
export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/**
 * The address `offset` away from `ip` (negative goes down); throws `ERR_OUT_OF_RANGE` past either end of the family.
 * @example
 * formatIp(addToIp(parseIp("10.0.0.255"), 1)) // "10.0.1.0"
 */
export function addToIp(ip: IpAddress, offset: bigint | number): IpAddress {
  const delta = toInteger(offset, "offset");
  const value = ip.value + delta;
  if (value < 0n || value > maxIpValue(ip.family)) {
    throw new FlatnetError(
      "ERR_OUT_OF_RANGE",
      `${ip.family} address value ${ip.value} plus ${delta} leaves the address space 0..${maxIpValue(ip.family)}`,
      { details: { family: ip.family, value: ip.value.toString(), offset: delta.toString() } },
    );
  }
  return { family: ip.family, value };
}

/** True when `ip` is an IPv4-mapped IPv6 address (`::ffff:0:0/96`, RFC 4291 2.5.5.2). */
export function isIpv4Mapped(ip: IpAddress): boolean {
  return ip.family === "IPv6" && ip.value >> 32n === 0xffffn;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address; any other address is returned unchanged. */
export function unmapIp(ip: IpAddress): IpAddress {
  return isIpv4Mapped(ip) ? { family: "IPv4", value: ip.value & 0xffff_ffffn } : ip;
}

/** The IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) of an IPv4 address; IPv6 addresses are returned unchanged. */
export function mapIpv4ToIpv6(ip: IpAddress): IpAddress {
  return ip.family === "IPv4" ? { family: "IPv6", value: MAPPED_PREFIX | ip.value } : ip;
}

/**
 * True when two address strings name the same host, treating `::ffff:a.b.c.d` as `a.b.c.d`
 * (a dual-stack socket reports IPv4 peers mapped). Invalid strings are never the same.
 * @example
 * sameHost("::ffff:10.244.1.5", "10.244.1.5") // true
 */
export function sameHost(a: string, b: string): boolean {
  const left = safeParseIp(a);
  const right = safeParseIp(b);
  return left.success && right.success && ipEquals(unmapIp(left.data), unmapIp(right.data));
}

/** Parses an address and unmaps IPv4-mapped IPv6 to IPv4 (for comparing what sockets report). Throws like `parseIp`. */
export function parseHostIp(text: string): IpAddress {
  return unmapIp(parseIp(text));
}
