import type { Result } from "../errors.ts";
import { type Cidr, safeParseCidr } from "../cidr/index.ts";
import { formatIp, type IpAddress, safeParseIp } from "../ip/index.ts";
import { vtepMacFor } from "./vtep-mac.ts";

/** A parsed pod CIDR with the canonical strings the kernel objects use. */
export interface ParsedPodCidr {
  readonly cidr: Cidr;
  /** Canonical CIDR, the route dst. */
  readonly text: string;
  /** The first address, the node's VTEP IP. */
  readonly vtep: string;
}

/** A parsed underlay IP with its canonical string. */
export interface ParsedIp {
  readonly ip: IpAddress;
  readonly text: string;
}

// A level-triggered agent recomputes from mostly identical snapshots; memoising the parse of each wire string
// (a pure function of it) removes most of the per-resync allocation. Bounded: cleared when full.
const LIMIT = 100_000;
const cidrs = new Map<string, Result<ParsedPodCidr>>();
const ips = new Map<string, Result<ParsedIp>>();
const macs = new Map<string, string>();

/** Parses a pod CIDR string (memoised). */
export function parsePodCidr(text: string): Result<ParsedPodCidr> {
  let hit = cidrs.get(text);
  if (hit === undefined) {
    const parsed = safeParseCidr(text);
    hit = parsed.success ? { success: true, data: withVtep(parsed.data) } : parsed;
    if (typeof text === "string") remember(cidrs, text, hit);
  }
  return hit;
}

/** Parses an underlay IP string (memoised). */
export function parseUnderlayIp(text: string): Result<ParsedIp> {
  let hit = ips.get(text);
  if (hit === undefined) {
    const parsed = safeParseIp(text);
    hit = parsed.success ? { success: true, data: { ip: parsed.data, text: formatIp(parsed.data) } } : parsed;
    if (typeof text === "string") remember(ips, text, hit);
  }
  return hit;
}

/** `vtepMacFor(name)`, memoised (the same string each time, so maps keyed by it hash it once). */
export function defaultVtepMac(name: string): string {
  let mac = macs.get(name);
  if (mac === undefined) {
    mac = vtepMacFor(name);
    remember(macs, name, mac);
  }
  return mac;
}

/** Empties the parse memo (for benchmarks that measure a first computation). */
export function clearParseCache(): void {
  cidrs.clear();
  ips.clear();
  macs.clear();
}

function withVtep(cidr: Cidr): ParsedPodCidr {
  const vtep = formatIp({ family: cidr.family, value: cidr.network });
  return { cidr, text: `${vtep}/${cidr.prefix}`, vtep };
}

function remember<T>(cache: Map<string, T>, key: string, value: T): void {
  if (cache.size >= LIMIT) cache.clear();
  cache.set(key, value);
}


