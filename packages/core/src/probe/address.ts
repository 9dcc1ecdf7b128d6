// The probe's string-level view of core's ip/cidr modules: probe inputs (socket peers, iproute2 output, inventory
// text) arrive as strings, may carry a zone or padding, and an unparsable one must not throw mid-sweep.
import { cidrContains, firstAddress, safeParseCidr } from "../cidr/index.ts";
import { formatIp, type IpAddress, type IpFamily, safeParseIp, unmapIp } from "../ip/index.ts";

/** The family of a textual address; undefined for a string that is not a strict IPv4 or IPv6 address. */
export function probeAddressFamily(ip: string): IpFamily | undefined {
  const parsed = safeParseIp(ip);
  return parsed.success ? parsed.data.family : undefined;
}

/**
 * The address a NAT comparison should use: `::ffff:a.b.c.d` (and its hex form) becomes `a.b.c.d`,
 * IPv6 is lower-cased and compressed canonically, anything unparsable is returned as is.
 * @example unmapAddress("::ffff:10.244.1.2") === "10.244.1.2"
 */
export function unmapAddress(ip: string): string {
  const text = stripReported(ip);
  const parsed = parseReported(text);
  return parsed === undefined ? text : formatIp(parsed);
}

/** Whether two textual addresses name the same host after unmapping and canonicalisation. */
export function sameAddress(a: string, b: string): boolean {
  const left = parseReported(stripReported(a));
  const right = parseReported(stripReported(b));
  if (left === undefined || right === undefined) return left === right && stripReported(a) === stripReported(b);
  return left.family === right.family && left.value === right.value;
}

/** Whether `ip` lies inside `cidr` (both textual; mapped IPv4 counts as IPv4; host bits of `cidr` are ignored). False for unparsable input. */
export function cidrIncludes(cidr: string, ip: string): boolean {
  const network = safeParseCidr(cidr, { maskHostBits: true });
  const address = parseReported(stripReported(ip));
  return network.success && address !== undefined && cidrContains(network.data, address);
}

/**
 * The first host address of a CIDR (network + 1): the pod bridge's gateway convention of flatnet (and of most
 * bridge plugins). Undefined for unparsable input or a prefix that leaves no host address.
 * @example cidrFirstHost("10.244.1.0/24") === "10.244.1.1"
 */
export function cidrFirstHost(cidr: string): string | undefined {
  const parsed = safeParseCidr(cidr, { maskHostBits: true });
  // an IPv4 /31 or /32 has no network-plus-one host in the bridge convention; IPv6 has no broadcast to spare.
  if (!parsed.success || parsed.data.prefix > (parsed.data.family === "IPv4" ? 30 : 127)) return undefined;
  return formatIp({ family: parsed.data.family, value: parsed.data.network + 1n });
}

/**
 * The network address of a CIDR: flatnet's VTEP address (`10.244.1.0/32` on the VXLAN device, as flannel does).
 * @example cidrNetworkAddress("10.244.1.77/24") === "10.244.1.0"
 */
export function cidrNetworkAddress(cidr: string): string | undefined {
  const parsed = safeParseCidr(cidr, { maskHostBits: true });
  return parsed.success ? formatIp(firstAddress(parsed.data)) : undefined;
}

// Sockets and iproute2 may report `fe80::1%eth0` or padded text; core's strict parser takes neither.
function stripReported(ip: string): string {
  const zone = ip.indexOf("%");
  return (zone === -1 ? ip : ip.slice(0, zone)).trim();
}

function parseReported(text: string): IpAddress | undefined {
  const parsed = safeParseIp(text);
  return parsed.success ? unmapIp(parsed.data) : undefined;
}
