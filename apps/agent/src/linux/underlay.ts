import { cidrOf, formatCidr, ipFamilyOf, parseIp, safeParseIp } from "@flatnet/core";
import { KernelCommandError, assertNetnsName, parseJsonStream, runBatch, runCommand } from "./exec.ts";
import type { IpLinkJson, IpRouteJson } from "./read.ts";

/** What the agent learns about its underlay interface, inside its own namespace. */
export interface UnderlayInfo {
  device: string;
  /** One per family (the first global address of each), or the one given. */
  ips: string[];
  mtu: number;
  /** The L2 subnets of those addresses ("172.31.0.0/24"): peers inside one are reachable by host-gw. */
  subnets: string[];
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
  const link = (parseJsonStream(result.stdout)[0] as IpLinkJson[] | undefined)?.[0];
  const addresses = (link?.addr_info ?? []).filter((a) => a.scope === "global" && a.local !== undefined && a.prefixlen !== undefined);
  const picked = preferred.map((want) => {
    const found = addresses.find((a) => a.local === want);
    if (found !== undefined) return found;
    const have = addresses.map((a) => a.local).join(", ") || "none";
    throw new UnderlayError(`underlay IP "${want}" is not an address of "${device}" in namespace "${netns}" (it has: ${have})`);
  });
  // The first address of each family: the preferred ones, then the device's in its order.
  const chosen: { local: string; prefixlen: number }[] = [];
  for (const a of [...picked, ...addresses]) {
    if (!chosen.some((c) => ipFamilyOf(c.local) === ipFamilyOf(a.local ?? ""))) chosen.push({ local: a.local ?? "", prefixlen: a.prefixlen ?? 0 });
  }
  if (chosen.length === 0) {
    throw new UnderlayError(`underlay device "${device}" in namespace "${netns}" has no global address`);
  }
  // The first underlay IP picks the VXLAN underlay family: keep the order given, else IPv4 first.
  if (preferred.length === 0) chosen.sort((a, b) => (ipFamilyOf(a.local) === ipFamilyOf(b.local) ? 0 : ipFamilyOf(a.local) === "IPv4" ? -1 : 1));
  return {
    device,
    ips: chosen.map((c) => c.local),
    mtu: link?.mtu ?? 1500,
    subnets: chosen.map((c) => subnetOf(c.local, c.prefixlen)),
  };
}

/** How the underlay device is chosen: each field tried in this order (flannel's --iface, --iface-can-reach, node IP, default route). */
export interface UnderlayChoice {
  /** --underlay-device: this interface and no other. */
  device?: string;
  /** --underlay-can-reach: the device of the route to this address (`ip route get`). */
  canReach?: string;
  /** --underlay-ip, else the Node's InternalIP: the interface holding the first of these addresses. */
  ips?: readonly string[];
}

/** The underlay device and the rule that found it ("the default route's device", ...), for the log and errors. */
export interface FoundUnderlay {
  device: string;
  how: string;
}

/**
 * Finds the underlay device in `netns` as `choice` says: the device given, else the route's device towards
 * `canReach`, else the interface holding the first of `ips`, else the default route's device (IPv4, then IPv6).
 * Throws an UnderlayError naming every rule tried when none gives a device.
 */
export async function findUnderlayDevice(netns: string, choice: UnderlayChoice): Promise<FoundUnderlay> {
  if (choice.device !== undefined) {
    const links = await readJson(netns, ["link", "show", "dev", choice.device]).catch((error: KernelCommandError) => {
      // Only a missing device is ENODEV; anything else (a namespace ip cannot enter) is reported as it is.
      if (error.code === "ENODEV") return undefined;
      throw new UnderlayError(`underlay device "${choice.device}" in namespace "${netns}" cannot be read: ${firstLine(error)}`);
    });
    if (links === undefined || links.length === 0) {
      const have = (await readJson(netns, ["link", "show"]).catch(() => []))
        .flatMap((l) => (l.ifname === undefined || l.ifname === "lo" ? [] : [l.ifname]))
        .sort()
        .join(", ");
      throw new UnderlayError(`underlay device "${choice.device}" (--underlay-device) does not exist in namespace "${netns}" (it has: ${have || "no interface but lo"})`);
    }
    return { device: choice.device, how: "--underlay-device" };
  }
  if (choice.canReach !== undefined) {
    if (!safeParseIp(choice.canReach).success) throw new UnderlayError(`--underlay-can-reach "${choice.canReach}" is not an IP address`);
    const routes = await readJson(netns, ["route", "get", choice.canReach]).catch((error: KernelCommandError) => {
      throw new UnderlayError(`no route to ${choice.canReach} (--underlay-can-reach) in namespace "${netns}": ${firstLine(error)}`);
    });
    const dev = routes[0]?.dev;
    if (dev === undefined || dev === "lo") throw new UnderlayError(`the route to ${choice.canReach} (--underlay-can-reach) in namespace "${netns}" leaves by no usable device (${dev ?? "none"})`);
    return { device: dev, how: `the route to ${choice.canReach} (--underlay-can-reach)` };
  }
  const tried: string[] = [];
  const wanted = choice.ips?.[0];
  if (wanted !== undefined) {
    const links = await readJson(netns, ["addr", "show"]);
    const holder = links.find((l) => (l.addr_info ?? []).some((a) => a.local === wanted));
    if (holder?.ifname !== undefined) return { device: holder.ifname, how: `the interface holding ${wanted}` };
    tried.push(`no interface holds ${wanted}`);
  }
  for (const family of ["-4", "-6"]) {
    const routes = await readJson(netns, [family, "route", "show", "default"]).catch(() => []);
    const dev = routes.find((r) => r.dev !== undefined)?.dev;
    if (dev !== undefined) return { device: dev, how: `the default route's device (${family === "-4" ? "IPv4" : "IPv6"})` };
  }
  tried.push("no default route (IPv4 or IPv6)");
  throw new UnderlayError(
    `no underlay device found in namespace "${netns}": ${tried.join("; ")}; name it with --underlay-device <dev> or --underlay-can-reach <peer IP>`,
  );
}

// Links, addresses or routes: each answer reads the fields it asked for.
async function readJson(netns: string, args: readonly string[]): Promise<(IpLinkJson & IpRouteJson)[]> {
  assertNetnsName(netns);
  const argv = ["-n", netns, "-json", ...args];
  const result = await runCommand("ip", argv);
  if (result.exitCode !== 0) throw new KernelCommandError(["ip", ...argv], result.exitCode, result.stderr);
  return result.stdout.trim() === "" ? [] : (JSON.parse(result.stdout) as (IpLinkJson & IpRouteJson)[]);
}

function firstLine(error: KernelCommandError): string {
  return error.stderr.trim().split("\n")[0] || `ip exited ${error.exitCode}`;
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
