import { type CoreError, coreError, err, FlatnetError, ok, type Result } from "../errors.ts";

/** An IP family, spelled as Kubernetes spells it. */
export type IpFamily = "IPv4" | "IPv6";

/** An IP address as a number: IPv4 in 0..2^32-1, IPv6 in 0..2^128-1. IPv4-mapped IPv6 stays IPv6. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** The number of bits of an address of `family` (32 or 128). */
export function ipBits(family: IpFamily): 32 | 128 {
  return family === "IPv4" ? 32 : 128;
}

/** The largest address value of `family` (2^32-1 or 2^128-1). */
export function maxIpValue(family: IpFamily): bigint {
  return family === "IPv4" ? IPV4_MAX : IPV6_MAX;
}

export const IPV4_MAX = 0xffff_ffffn;
export const IPV6_MAX = (1n << 128n) - 1n;

function invalid(text: string, rule: string, details?: Record<string, unknown>): CoreError {
  return coreError("ERR_INVALID_IP", `IP address ${JSON.stringify(text)} ${rule}`, { value: text, ...details });
}

/** Parses a strict dotted-quad IPv4 to its 32-bit value, or an error naming the broken rule. */
function parseIpv4Value(text: string, whole: string): number | CoreError {
  let dots = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 0x2e) dots++;
  if (dots !== 3) return invalid(whole, `has ${dots + 1} dot-separated parts; IPv4 is 4 decimal octets a.b.c.d`);
  let value = 0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && text.charCodeAt(i) !== 0x2e) continue;
    const part = text.slice(start, i);
    if (part.length === 0) return invalid(whole, `has an empty octet; IPv4 is 4 dot-separated decimal octets`);
    let octet = 0;
    for (let j = 0; j < part.length; j++) {
      const c = part.charCodeAt(j) - 0x30;
      if (c < 0 || c > 9) {
        return invalid(whole, `has octet ${JSON.stringify(part)}; IPv4 octets are decimal digits only (no hex, signs or spaces)`);
      }
      octet = octet * 10 + c;
    }
    if (part.length > 1 && part.charCodeAt(0) === 0x30) {
      return invalid(whole, `has octet ${JSON.stringify(part)} with a leading zero; IPv4 octets are written without leading zeros (no octal)`);
    }
    if (part.length > 3 || octet > 255) return invalid(whole, `has octet ${part}; IPv4 octets are 0-255`);
    value = value * 256 + octet;
    start = i + 1;
  }
  return value;
}

function parseIpv6Groups(part: string, whole: string, groups: number[], allowIpv4Tail: boolean): CoreError | undefined {
  if (part === "") return undefined;
  const fields = part.split(":");
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (field.includes(".")) {
      if (!allowIpv4Tail || i !== fields.length - 1) {
        return invalid(whole, `has embedded IPv4 ${JSON.stringify(field)} before its end; IPv6 allows dotted IPv4 only in the last 32 bits`);
      }
      const v4 = parseIpv4Value(field, whole);
      if (typeof v4 !== "number") return v4;
      groups.push(Math.floor(v4 / 0x10000), v4 % 0x10000);
      continue;
    }
    if (field.length === 0) return invalid(whole, `has an empty group; IPv6 groups are 1-4 hex digits separated by ":" (one "::" may stand for zeros)`);
    if (field.length > 4) return invalid(whole, `has group ${JSON.stringify(field)}; IPv6 groups are 1-4 hex digits`);
    let group = 0;
    for (let j = 0; j < field.length; j++) {
      const c = field.charCodeAt(j);
      let digit: number;
      if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) digit = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) digit = c - 0x37;
      else return invalid(whole, `has group ${JSON.stringify(field)}; IPv6 groups are hex digits only`);
      group = group * 16 + digit;
    }
    groups.push(group);
  }
  return undefined;
}

function parseIpv6Value(text: string): bigint | CoreError {
  if (text.includes("%")) return invalid(text, `has a zone index; flatnet addresses take no "%zone"`);
  if (text.startsWith("[")) return invalid(text, `is bracketed; write the IPv6 address without "[" and "]"`);
  const doubleColon = text.indexOf("::");
  if (doubleColon !== -1 && text.indexOf("::", doubleColon + 1) !== -1) {
    return invalid(text, `has more than one "::"; IPv6 allows at most one`);
  }
  const head: number[] = [];
  const tail: number[] = [];
  if (doubleColon === -1) {
    const problem = parseIpv6Groups(text, text, head, true);
    if (problem) return problem;
    if (head.length !== 8) return invalid(text, `has ${head.length} groups; IPv6 has 8 groups of 16 bits (or "::" for a run of zeros)`);
  } else {
    const left = text.slice(0, doubleColon);
    const right = text.slice(doubleColon + 2);
    const problem = parseIpv6Groups(left, text, head, false) ?? parseIpv6Groups(right, text, tail, true);
    if (problem) return problem;
    if (head.length + tail.length > 7) {
      return invalid(text, `has ${head.length + tail.length} groups and "::"; "::" must stand for at least one zero group of the 8`);
    }
  }
  let value = 0n;
  for (const group of head) value = (value << 16n) | BigInt(group);
  for (let i = head.length + tail.length; i < 8; i++) value <<= 16n;
  for (const group of tail) value = (value << 16n) | BigInt(group);
  return value;
}

function parseIpResult(text: string): IpAddress | CoreError {
  if (typeof text !== "string") return invalid(String(text), "is not a string");
  if (text.length === 0) return invalid(text, "is empty");
  if (/\s/.test(text)) return invalid(text, "contains whitespace; write the address alone");
  if (text.includes(":")) {
    const value = parseIpv6Value(text);
    return typeof value === "bigint" ? { family: "IPv6", value } : value;
  }
  if (text.includes("/")) return invalid(text, `has a prefix length; an IP address has no "/"`);
  const value = parseIpv4Value(text, text);
  return typeof value === "number" ? { family: "IPv4", value: BigInt(value) } : value;
}

function familyError(text: string, family: IpFamily, got: IpFamily): CoreError {
  return coreError("ERR_FAMILY_MISMATCH", `IP address ${JSON.stringify(text)} is ${got}; expected ${family}`, {
    value: text,
    expected: family,
    actual: got,
  });
}

/**
 * Parses a strict IPv4 or IPv6 address; returns a failed `Result` naming the broken rule.
 * IPv4 must be 4 decimal octets without leading zeros; IPv6 follows RFC 4291 text form without a zone.
 * @example
 * safeParseIp("10.0.0.1")  // { success: true, data: { family: "IPv4", value: 167772161n } }
 * safeParseIp("010.0.0.1") // { success: false, error: { code: "ERR_INVALID_IP", ... } }
 */
export function safeParseIp(text: string, family?: IpFamily): Result<IpAddress> {
  const parsed = parseIpResult(text);
  if ("code" in parsed) return err(parsed);
  if (family !== undefined && parsed.family !== family) return err(familyError(text, family, parsed.family));
  return ok(parsed);
}

/**
 * Parses a strict IPv4 or IPv6 address, throwing a `FlatnetError` (`ERR_INVALID_IP`, `ERR_FAMILY_MISMATCH`).
 * @example
 * parseIp("fd00::1") // { family: "IPv6", value: 0xfd000000000000000000000000000001n }
 */
export function parseIp(text: string, family?: IpFamily): IpAddress {
  const result = safeParseIp(text, family);
  if (!result.success) throw FlatnetError.from(result.error);
  return result.data;
}

/** True when `text` is a strict IP address (of `family`, when given). */
export function isIp(text: string, family?: IpFamily): boolean {
  return safeParseIp(text, family).success;
}

/** The family of an IP address, CIDR or interface address string (`10.0.0.5/24`), or `undefined` when it is none of them. */
export function ipFamilyOf(text: string): IpFamily | undefined {
  if (typeof text !== "string") return undefined;
  const slash = text.indexOf("/");
  const parsed = parseIpResult(slash === -1 ? text : text.slice(0, slash));
  if ("code" in parsed) return undefined;
  if (slash !== -1) {
    const prefix = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefix) || Number(prefix) > ipBits(parsed.family)) return undefined;
  }
  return parsed.family;
}

/** Formats a 32-bit IPv4 value given as a number (fast path for allocators; not part of the public index). */
export function formatIpv4Value(value: number): string {
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** Formats a 128-bit IPv6 value per RFC 5952 (not part of the public index). */
export function formatIpv6Value(value: bigint): string {
  // RFC 5952 5: IPv4-mapped addresses keep the dotted quad.
  if (value >> 32n === 0xffffn) return `::ffff:${formatIpv4Value(Number(value & IPV4_MAX))}`;
  // One bigint-to-hex conversion, then plain string work: far cheaper than eight bigint shifts.
  const digits = value.toString(16).padStart(32, "0");
  const groups: string[] = new Array(8);
  for (let i = 0; i < 8; i++) {
    const group = digits.slice(i * 4, i * 4 + 4);
    let start = 0;
    while (start < 3 && group.charCodeAt(start) === 0x30) start++;
    groups[i] = start === 0 ? group : group.slice(start);
  }
  // RFC 5952 4.2: compress the longest run (first on a tie) of at least two zero groups.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLength).join(":")}`;
}

/**
 * Formats an address canonically: dotted quad for IPv4, RFC 5952 for IPv6 (`::ffff:1.2.3.4` for mapped).
 * @example
 * formatIp(parseIp("2001:0DB8:0:0:0:0:0:1")) // "2001:db8::1"
 */
export function formatIp(ip: IpAddress): string {
  if (ip.value < 0n || ip.value > maxIpValue(ip.family)) {
    throw new Error(`invariant: ${ip.family} address value ${ip.value} is outside 0..${maxIpValue(ip.family)}`);
  }
  return ip.family === "IPv4" ? formatIpv4Value(Number(ip.value)) : formatIpv6Value(ip.value);
}

/** Converts an integer argument to bigint, throwing `ERR_OUT_OF_RANGE` for a fractional, unsafe or non-finite number. */
export function toInteger(value: bigint | number, what: string): bigint {
  if (typeof value === "bigint") return value;
  if (!Number.isSafeInteger(value)) {
    throw new FlatnetError("ERR_OUT_OF_RANGE", `${what} ${value} is not an integer (use a bigint beyond 2^53)`, { details: { [what]: String(value) } });
  }
  return BigInt(value);
}

/** Builds an address from its family and numeric value, throwing `ERR_OUT_OF_RANGE` when the value does not fit. */
export function ipFromValue(family: IpFamily, value: bigint | number): IpAddress {
  const big = toInteger(value, "value");
  if (big < 0n || big > maxIpValue(family)) {
    throw new FlatnetError("ERR_OUT_OF_RANGE", `value ${big} is outside the ${family} address space 0..${maxIpValue(family)}`, {
      details: { family, value: big.toString() },
    });
  }
  return { family, value: big };
}

/** Parses and re-formats an address string canonically (e.g. `"2001:DB8::0:1"` -> `"2001:db8::1"`). Throws like `parseIp`. */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text));
}
