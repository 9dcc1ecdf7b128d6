import { type CoreError, coreError, err, FlatnetError, ok, type Result } from "../errors.ts";
import { formatIp, type IpAddress, ipBits, type IpFamily, safeParseIp, toInteger } from "../ip/address.ts";

/** An IP network: `network` has every host bit zero. */
export interface Cidr {
  readonly family: IpFamily;
  readonly network: bigint;
  readonly prefix: number;
}

/** An interface address: an IP with the prefix length of its subnet (`10.244.1.5/24`), as CNI and iproute2 write it. */
export interface InterfaceAddress {
  readonly address: IpAddress;
  readonly prefix: number;
}

/** Options of `parseCidr`. */
export interface ParseCidrOptions {
  /** Clear host bits instead of rejecting them (`10.0.0.1/8` -> `10.0.0.0/8`). Default: `false` (reject). */
  maskHostBits?: boolean;
}

function buildMasks(bits: number): bigint[] {
  const all = (1n << BigInt(bits)) - 1n;
  const masks: bigint[] = [];
  for (let prefix = 0; prefix <= bits; prefix++) masks.push(all >> BigInt(prefix));
  return masks;
}
const HOST_MASKS: Record<IpFamily, bigint[]> = { IPv4: buildMasks(32), IPv6: buildMasks(128) };

/** The host-bit mask of a prefix (`/24` -> `0xff`). */
/**
 * A CIDR as written, or a bare address as its host prefix; text only, not validated.
 * @example asHostCidr("10.0.0.1") // "10.0.0.1/32"; asHostCidr("fd00::1") // "fd00::1/128"; asHostCidr("10.0.0.0/8") // "10.0.0.0/8"
 */
export function asHostCidr(text: string): string {
  return text.includes("/") ? text : `${text}/${text.includes(":") ? 128 : 32}`;
}

export function hostMask(family: IpFamily, prefix: number): bigint {
  const mask = HOST_MASKS[family][prefix];
  if (mask === undefined) throw new Error(`invariant: prefix ${prefix} is outside 0-${ipBits(family)} for ${family}`);
  return mask;
}

function invalidCidr(text: string, rule: string, cause?: CoreError): CoreError {
  return coreError("ERR_INVALID_CIDR", `CIDR ${JSON.stringify(text)} ${rule}`, { value: text }, cause);
}

function parsePrefix(text: string, prefixText: string, family: IpFamily): number | CoreError {
  const bits = ipBits(family);
  if (!/^[0-9]{1,3}$/.test(prefixText)) {
    return invalidCidr(text, `has prefix length ${JSON.stringify(prefixText)}; it must be a decimal number 0-${bits}`);
  }
  if (prefixText.length > 1 && prefixText.startsWith("0")) {
    return invalidCidr(text, `has prefix length ${JSON.stringify(prefixText)} with a leading zero; write it without`);
  }
  const prefix = Number(prefixText);
  if (prefix > bits) return invalidCidr(text, `has prefix length ${prefix}; ${family} allows 0-${bits}`);
  return prefix;
}

function splitAddressAndPrefix(text: string, what: string): { address: IpAddress; prefix: number } | CoreError {
  if (typeof text !== "string") return invalidCidr(String(text), "is not a string");
  const slash = text.indexOf("/");
  if (slash === -1) return invalidCidr(text, `has no prefix length; ${what} is written address/prefix, e.g. 10.0.0.0/24`);
  const ip = safeParseIp(text.slice(0, slash));
  if (!ip.success) return invalidCidr(text, `has an invalid address: ${ip.error.message}`, ip.error);
  const prefix = parsePrefix(text, text.slice(slash + 1), ip.data.family);
  if (typeof prefix !== "number") return prefix;
  return { address: ip.data, prefix };
}

/**
 * Parses a CIDR strictly (strict address, prefix 0-32 / 0-128, no host bits unless `maskHostBits`).
 * @example
 * safeParseCidr("10.244.0.0/16") // { success: true, data: { family: "IPv4", network: 183762944n, prefix: 16 } }
 * safeParseCidr("10.244.0.1/16") // { success: false, error: { code: "ERR_HOST_BITS_SET", ... } }
 */
export function safeParseCidr(text: string, options?: ParseCidrOptions): Result<Cidr> {
  const parts = splitAddressAndPrefix(text, "a CIDR");
  if ("code" in parts) return err(parts);
  const { address, prefix } = parts;
  const host = address.value & hostMask(address.family, prefix);
  if (host !== 0n && options?.maskHostBits !== true) {
    const network = formatCidr({ family: address.family, network: address.value ^ host, prefix });
    return err(
      coreError(
        "ERR_HOST_BITS_SET",
        `CIDR ${JSON.stringify(text)} has host bits set after /${prefix}; the network is ${network}`,
        { value: text, network },
      ),
    );
  }
  return ok({ family: address.family, network: address.value ^ host, prefix });
}

/**
 * Parses a CIDR strictly, throwing a `FlatnetError` (`ERR_INVALID_CIDR`, `ERR_HOST_BITS_SET`).
 * @example
 * formatCidr(parseCidr("fd00:10:244::/48")) // "fd00:10:244::/48"
 */
export function parseCidr(text: string, options?: ParseCidrOptions): Cidr {
  const result = safeParseCidr(text, options);
  if (!result.success) throw FlatnetError.from(result.error);
  return result.data;
}

/** True when `text` is a strict CIDR with no host bits set. */
export function isCidr(text: string): boolean {
  return safeParseCidr(text).success;
}

/** Formats a CIDR canonically (`10.0.0.0/8`, `fd00::/64`). */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

/** Parses and re-formats a CIDR string canonically. Throws like `parseCidr`. */
export function canonicalCidr(text: string, options?: ParseCidrOptions): string {
  return formatCidr(parseCidr(text, options));
}

/** Parses an interface address (`10.244.1.5/24`: host bits are the point), returning a failed `Result` on bad input. */
export function safeParseInterfaceAddress(text: string): Result<InterfaceAddress> {
  const parts = splitAddressAndPrefix(text, "an interface address");
  return "code" in parts ? err(parts) : ok(parts);
}

/** Parses an interface address (`fd00::5/64`), throwing a `FlatnetError` (`ERR_INVALID_CIDR`). */
export function parseInterfaceAddress(text: string): InterfaceAddress {
  const result = safeParseInterfaceAddress(text);
  if (!result.success) throw FlatnetError.from(result.error);
  return result.data;
}

/** Formats an interface address (`10.244.1.5/24`). */
export function formatInterfaceAddress(address: InterfaceAddress): string {
  return `${formatIp(address.address)}/${address.prefix}`;
}

/** The network of `prefix` bits that contains `ip` (host bits cleared). */
export function cidrOf(ip: IpAddress, prefix: number): Cidr {
  return { family: ip.family, network: ip.value & ~hostMask(ip.family, prefix), prefix };
}

/** The number of addresses in `cidr` (2^(bits - prefix)). */
export function cidrSize(cidr: Cidr): bigint {
  return hostMask(cidr.family, cidr.prefix) + 1n;
}

/** The first address of `cidr` (its network address). */
export function firstAddress(cidr: Cidr): IpAddress {
  return { family: cidr.family, value: cidr.network };
}

/** The last address of `cidr` (IPv4 broadcast; IPv6 all-ones host part). */
export function lastAddress(cidr: Cidr): IpAddress {
  return { family: cidr.family, value: cidr.network | hostMask(cidr.family, cidr.prefix) };
}

/**
 * The address at offset `n` in `cidr` (0 is the network address; negative counts from the end: -1 is the last).
 * Throws `ERR_OUT_OF_RANGE` when `n` is outside the CIDR.
 * @example
 * formatIp(nthAddress(parseCidr("10.244.1.0/24"), 1)) // "10.244.1.1"
 */
export function nthAddress(cidr: Cidr, n: bigint | number): IpAddress {
  const size = cidrSize(cidr);
  let offset = toInteger(n, "offset");
  if (offset < 0n) offset += size;
  if (offset < 0n || offset >= size) {
    throw new FlatnetError("ERR_OUT_OF_RANGE", `offset ${n} is outside CIDR ${formatCidr(cidr)}, which has ${size} addresses`, {
      details: { cidr: formatCidr(cidr), offset: String(n) },
    });
  }
  return { family: cidr.family, value: cidr.network + offset };
}

/** The offset of `ip` inside `cidr` (0 for the network address), or `undefined` when `ip` is outside it. */
export function addressIndex(cidr: Cidr, ip: IpAddress): bigint | undefined {
  return cidrContains(cidr, ip) ? ip.value - cidr.network : undefined;
}

function isCidrValue(value: Cidr | IpAddress): value is Cidr {
  return (value as Cidr).prefix !== undefined;
}

/**
 * True when `inner` (a CIDR or an address) lies wholly inside `outer`. Different families never contain each other.
 * @example
 * cidrContains(parseCidr("10.0.0.0/8"), parseIp("10.1.2.3")) // true
 */
export function cidrContains(outer: Cidr, inner: Cidr | IpAddress): boolean {
  if (outer.family !== inner.family) return false;
  const mask = ~hostMask(outer.family, outer.prefix);
  if (isCidrValue(inner)) return inner.prefix >= outer.prefix && (inner.network & mask) === outer.network;
  return (inner.value & mask) === outer.network;
}

/** True when `a` and `b` share at least one address (for CIDRs, one contains the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.prefix <= b.prefix ? cidrContains(a, b) : cidrContains(b, a);
}

/** True when both CIDRs are the same network. */
export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}

/** Orders CIDRs: IPv4 before IPv6, then by network, then shorter prefix first. Returns -1, 0 or 1. */
export function compareCidr(a: Cidr, b: Cidr): -1 | 0 | 1 {
  if (a.family !== b.family) return a.family === "IPv4" ? -1 : 1;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0;
}

/** Yields every address of `cidr` in order (lazily: a /64 never ends in practice). */
export function* iterateAddresses(cidr: Cidr): Generator<IpAddress, void, undefined> {
  const last = cidr.network | hostMask(cidr.family, cidr.prefix);
  for (let value = cidr.network; value <= last; value++) yield { family: cidr.family, value };
}
