/**
 * The few address operations the views need (contains, normalise). A local copy so the extension builds
 * while @flatnet/core's cidr module is being written; swap to core's `cidrContains` once it lands.
 */
export type Family = "IPv4" | "IPv6";
export interface Address { family: Family; value: bigint }
export interface Prefix { family: Family; network: bigint; prefix: number }

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const left = halves[0] ? halves[0].split(":") : [];
  const right = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...right];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

/** Parses an IPv4 or IPv6 address; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is unmapped to IPv4. */
export function parseAddress(text: string): Address | undefined {
  const trimmed = text.trim();
  if (trimmed.includes(":")) {
    const value = parseIpv6(trimmed);
    if (value === undefined) return undefined;
    if (value >> 32n === 0xffffn) return { family: "IPv4", value: value & 0xffffffffn };
    return { family: "IPv6", value };
  }
  const value = parseIpv4(trimmed);
  return value === undefined ? undefined : { family: "IPv4", value };
}

/** Parses `addr/len`; host bits are masked off (a node's podCIDR is canonical, but be lenient when reading). */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = parseAddress(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!address || !/^\d{1,3}$/.test(lengthText)) return undefined;
  const prefix = Number(lengthText);
  const bits = address.family === "IPv4" ? 32 : 128;
  if (prefix > bits) return undefined;
  const hostBits = BigInt(bits - prefix);
  return { family: address.family, network: (address.value >> hostBits) << hostBits, prefix };
}

export function prefixContains(prefix: Prefix, address: Address): boolean {
  if (prefix.family !== address.family) return false;
  const hostBits = BigInt((prefix.family === "IPv4" ? 32 : 128) - prefix.prefix);
  return address.value >> hostBits === prefix.network >> hostBits;
}

export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefix, b.prefix);
  const hostBits = BigInt((a.family === "IPv4" ? 32 : 128) - shorter);
  return a.network >> hostBits === b.network >> hostBits;
}

/** Canonical text key of an address (unmapped, lower-case), for duplicate detection. */
export function addressKey(address: Address): string {
  return `${address.family}:${address.value.toString(16)}`;
}
