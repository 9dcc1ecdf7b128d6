// Minimal address helpers the probe logic needs (family, IPv4-mapped unmapping, CIDR membership).
// Kept local and string-based so probe code does not depend on the ip/cidr modules' exact shapes.

/** The family of a textual address (`:` means IPv6); undefined for a string that is neither. */
export function probeAddressFamily(ip: string): "IPv4" | "IPv6" | undefined {
  if (parseV4(ip) !== undefined) return "IPv4";
  if (parseV6(ip) !== undefined) return "IPv6";
  return undefined;
}

/**
 * The address a NAT comparison should use: `::ffff:a.b.c.d` (and its hex form) becomes `a.b.c.d`,
 * IPv6 is lower-cased and compressed canonically, anything unparsable is returned as is.
 * @example unmapAddress("::ffff:10.244.1.2") === "10.244.1.2"
 */
export function unmapAddress(ip: string): string {
  const trimmed = ip.trim().replace(/%.*$/, "");
  if (parseV4(trimmed) !== undefined) return trimmed;
  const v6 = parseV6(trimmed);
  if (v6 === undefined) return trimmed;
  if (v6 >> 32n === 0xffffn) return formatV4(Number(v6 & 0xffffffffn));
  return formatV6(v6);
}

/** Whether two textual addresses name the same host after unmapping and canonicalisation. */
export function sameAddress(a: string, b: string): boolean {
  return unmapAddress(a) === unmapAddress(b);
}

/** Whether `ip` lies inside `cidr` (both textual; mapped IPv4 counts as IPv4). False for unparsable input. */
export function cidrIncludes(cidr: string, ip: string): boolean {
  const slash = cidr.indexOf("/");
  if (slash < 0) return false;
  const prefix = Number(cidr.slice(slash + 1));
  const netText = cidr.slice(0, slash);
  const addr = unmapAddress(ip);
  const net4 = parseV4(netText);
  if (net4 !== undefined) {
    const a = parseV4(addr);
    if (a === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return false;
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return ((a & mask) >>> 0) === ((net4 & mask) >>> 0);
  }
  const net6 = parseV6(netText);
  const a6 = parseV6(addr);
  if (net6 === undefined || a6 === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 128) return false;
  const shift = BigInt(128 - prefix);
  return a6 >> shift === net6 >> shift;
}

function parseV4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255 || (part.length > 1 && part.startsWith("0"))) return undefined;
    value = value * 256 + n;
  }
  return value;
}

function formatV4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

function parseV6(text: string): bigint | undefined {
  if (!text.includes(":")) return undefined;
  let head = text;
  let tailV4: number | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const toGroups = (s: string): string[] => (s === "" ? [] : s.split(":"));
  const left = toGroups(halves[0] ?? "");
  const right = halves.length === 2 ? toGroups(halves[1] ?? "") : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...right];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | BigInt(tailV4);
  return value;
}

function formatV6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 4.2: compress the longest run (first on ties) of at least two zero groups.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/**
 * The first host address of a CIDR (network + 1): the pod bridge's gateway convention of flatnet (and of most
 * bridge plugins). Undefined for unparsable input or a prefix that leaves no host address.
 * @example cidrFirstHost("10.244.1.0/24") === "10.244.1.1"
 */
export function cidrFirstHost(cidr: string): string | undefined {
  return cidrAddress(cidr, 1);
}

/**
 * The network address of a CIDR: flatnet's VTEP address (`10.244.1.0/32` on the VXLAN device, as flannel does).
 * @example cidrNetworkAddress("10.244.1.77/24") === "10.244.1.0"
 */
export function cidrNetworkAddress(cidr: string): string | undefined {
  return cidrAddress(cidr, 0);
}

function cidrAddress(cidr: string, offset: 0 | 1): string | undefined {
  const slash = cidr.indexOf("/");
  if (slash < 0) return undefined;
  const prefix = Number(cidr.slice(slash + 1));
  const netText = cidr.slice(0, slash);
  const net4 = parseV4(netText);
  if (net4 !== undefined) {
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (offset === 0 ? 32 : 30)) return undefined;
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return formatV4(((net4 & mask) >>> 0) + offset);
  }
  const net6 = parseV6(netText);
  if (net6 === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (offset === 0 ? 128 : 127)) return undefined;
  const shift = BigInt(128 - prefix);
  return formatV6(((net6 >> shift) << shift) + BigInt(offset));
}
