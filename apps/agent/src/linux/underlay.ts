import { cidrOf, formatCidr, parseIp } from "@flatnet/core";
import { parseJsonStream, runBatch } from "./exec.ts";
import { familyOf } from "./read.ts";

/** What the agent learns about its underlay interface, inside its own namespace. */
export interface UnderlayInfo {
  device: string;
  /** One per family (the first global address of each), or the one given. */
  ips: string[];
  mtu: number;
  /** The L2 subnets of those addresses ("172.31.0.0/24"): peers inside one are reachable by host-gw. */
  subnets: string[];
}

interface AddrJson {
  ifname?: string;
  mtu?: number;
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string; tentative?: boolean }[];
}

/**
 * Reads the underlay device in `netns`: its MTU, global addresses (at most one per family) and their subnets.
 * `preferred` picks an address when the device has several; it must be on the device.
 */
export async function detectUnderlay(netns: string, device: string, preferred: string[] = []): Promise<UnderlayInfo> {
  const result = await runBatch("ip", netns, [`addr show dev ${device}`], { json: true });
  if (result.exitCode !== 0) {
    const reason = result.stderr.trim().split("\n")[0] ?? "";
    throw new UnderlayError(`underlay device "${device}" in namespace "${netns}" cannot be read: ${reason}`);
  }
  const link = (parseJsonStream(result.stdout)[0] as AddrJson[] | undefined)?.[0];
  const addresses = (link?.addr_info ?? []).filter((a) => a.scope === "global" && a.local !== undefined && a.prefixlen !== undefined);
  const chosen: { local: string; prefixlen: number }[] = [];
  for (const want of preferred) {
    const found = addresses.find((a) => a.local === want);
    if (found === undefined) {
      const have = addresses.map((a) => a.local).join(", ") || "none";
      throw new UnderlayError(`underlay IP "${want}" is not an address of "${device}" in namespace "${netns}" (it has: ${have})`);
    }
    if (!chosen.some((c) => familyOf(c.local) === familyOf(want))) chosen.push({ local: want, prefixlen: found.prefixlen ?? 0 });
  }
  for (const a of addresses) {
    if (!chosen.some((c) => familyOf(c.local) === familyOf(a.local ?? ""))) chosen.push({ local: a.local ?? "", prefixlen: a.prefixlen ?? 0 });
  }
  if (chosen.length === 0) {
    throw new UnderlayError(`underlay device "${device}" in namespace "${netns}" has no global address`);
  }
  // The first underlay IP picks the VXLAN underlay family: keep the order given, else IPv4 first.
  if (preferred.length === 0) chosen.sort((a, b) => (familyOf(a.local) === familyOf(b.local) ? 0 : familyOf(a.local) === "IPv4" ? -1 : 1));
  return {
    device,
    ips: chosen.map((c) => c.local),
    mtu: link?.mtu ?? 1500,
    subnets: chosen.map((c) => subnetOf(c.local, c.prefixlen)),
  };
}

/** The network of `ip/prefix` in canonical form ("172.31.0.11", 24 -> "172.31.0.0/24"). */
export function subnetOf(ip: string, prefix: number): string {
  return formatCidr(cidrOf(parseIp(ip), prefix));
}

/** The underlay cannot be used as given (device missing, no address, an --underlay-ip it does not have). */
export class UnderlayError extends Error {
  readonly code = "ERR_UNDERLAY";
  override readonly name = "UnderlayError";
}
