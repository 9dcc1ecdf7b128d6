import type { NetworkConfig } from "../config/network-config.ts";

// Picks the next free per-node pod CIDR in each cluster CIDR, given the CIDRs already taken by any node.
// TODO(core-addr): replace the arithmetic below with the core's cluster IPAM once packages/core/src/ipam lands;
// only this file changes (the datastores call chooseNodeCidrs and nothing else).

export class PoolExhaustedError extends Error {
  readonly code = "ERR_POOL_EXHAUSTED";
  override readonly name = "PoolExhaustedError";
}

interface Range { family: 4 | 6; network: bigint; prefix: number }

/** One free node CIDR per cluster CIDR (dual-stack: both or none), skipping every taken CIDR that overlaps. */
export function chooseNodeCidrs(config: NetworkConfig, taken: Iterable<string>): string[] {
  const takenRanges = [...taken].map(parseRange);
  return config.clusterCidrs.map((clusterCidr) => {
    const pool = parseRange(clusterCidr);
    const mask = pool.family === 4 ? config.nodeMaskIPv4 : config.nodeMaskIPv6;
    if (mask < pool.prefix) throw new PoolExhaustedError(`node mask /${mask} is shorter than cluster CIDR "${clusterCidr}"`);
    const bits = pool.family === 4 ? 32 : 128;
    const count = 1n << BigInt(mask - pool.prefix);
    const step = 1n << BigInt(bits - mask);
    for (let i = 0n; i < count; i++) {
      const candidate: Range = { family: pool.family, network: pool.network + i * step, prefix: mask };
      if (!takenRanges.some((t) => overlaps(t, candidate))) return formatRange(candidate);
    }
    throw new PoolExhaustedError(`cluster CIDR "${clusterCidr}" has no free /${mask} left for another node`);
  });
}

/** Whether cidr lies inside one of the cluster CIDRs. */
export function insideClusterCidrs(config: NetworkConfig, cidr: string): boolean {
  const range = parseRange(cidr);
  return config.clusterCidrs.some((c) => {
    const pool = parseRange(c);
    return pool.family === range.family && pool.prefix <= range.prefix && overlaps(pool, range);
  });
}

function overlaps(a: Range, b: Range): boolean {
  if (a.family !== b.family) return false;
  const bits = a.family === 4 ? 32 : 128;
  const prefix = Math.min(a.prefix, b.prefix);
  const shift = BigInt(bits - prefix);
  return a.network >> shift === b.network >> shift;
}

export function parseRange(cidr: string): Range {
  const [ip, len] = cidr.split("/");
  const prefix = Number(len);
  if (ip === undefined || len === undefined || !/^\d+$/.test(len)) throw new Error(`CIDR "${cidr}" has no prefix length`);
  if (ip.includes(":")) return { family: 6, network: parseIpv6(ip, cidr), prefix };
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`CIDR "${cidr}" is not IPv4 dotted quad`);
  return { family: 4, network: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n), prefix };
}

function parseIpv6(ip: string, cidr: string): bigint {
  const [head = "", tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) throw new Error(`CIDR "${cidr}" is not a valid IPv6 network`);
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function formatRange(range: Range): string {
  if (range.family === 4) {
    const n = range.network;
    return `${[24n, 16n, 8n, 0n].map((s) => (n >> s) & 255n).join(".")}/${range.prefix}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((range.network >> BigInt(112 - i * 16)) & 0xffffn));
  // RFC 5952 4.2: compress the longest run (of at least two) zero groups, the first one on a tie.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  const text = best < 0 ? hex.join(":") : `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
  return `${text}/${range.prefix}`;
}
