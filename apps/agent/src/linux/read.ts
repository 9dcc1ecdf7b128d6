import { DEFAULT_VXLAN_DEVICE, type FdbEntry, FLATNET_ROUTE_PROTOCOL, ipFamilyOf, type KernelState, type Neighbour, type Route, type VxlanDevice } from "@flatnet/core";
import { KernelCommandError, failureCode, parseJsonStream, runBatch } from "./exec.ts";

export interface ReadOptions {
  /** The VXLAN device flatnet owns in this namespace (default "flatnet.1"). */
  vxlanDevice?: string;
}

// What `ip -json` / `bridge -json` print, as far as flatnet reads it (linux/ reads every answer through these).
export interface IpRouteJson { type?: string; dst?: string; gateway?: string; dev?: string; prefsrc?: string; table?: string; protocol?: string; metric?: number; flags?: string[] }
interface IpNeighJson { dst?: string; dev?: string; lladdr?: string; state?: string[] }
interface BridgeFdbJson { mac?: string; dst?: string; ifname?: string; state?: string }
export interface IpLinkJson {
  ifname?: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; local6?: string; link?: string; port?: number } };
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[];
}

/**
 * Reads what flatnet owns in `netns`: its VXLAN device, `proto 77` routes of the main table, permanent neighbours and
 * FDB entries of its VXLAN device. Two processes run side by side: one `ip -batch`, one `bridge`.
 */
export async function readKernelState(netns: string, options: ReadOptions = {}): Promise<KernelState> {
  const vxlanDevice = options.vxlanDevice ?? DEFAULT_VXLAN_DEVICE;
  // `table all` lists both families in one command (a family flag cannot appear inside a batch line).
  const ipLines = ["addr show type vxlan", `route show table all proto ${FLATNET_ROUTE_PROTOCOL}`, "neigh show nud permanent"];
  const [ip, fdb] = await Promise.all([
    runBatch("ip", netns, ipLines, { json: true, details: true }),
    runBatch("bridge", netns, [`fdb show dev ${vxlanDevice}`], { json: true }),
  ]);
  if (ip.exitCode !== 0) throw new KernelCommandError(["ip", "-n", netns, "-batch", "-"], ip.exitCode, ip.stderr, ip.failures);
  const [links = [], routes = [], neighbours = []] = parseJsonStream(ip.stdout) as [IpLinkJson[]?, IpRouteJson[]?, IpNeighJson[]?];
  const link = links.find((l) => l.ifname === vxlanDevice);
  // The device may vanish between the two reads; anything else is a real failure.
  if (fdb.exitCode !== 0 && link !== undefined && failureCode(fdb) !== "ENODEV") {
    throw new KernelCommandError(["bridge", "-n", netns, "fdb", "show", "dev", vxlanDevice], fdb.exitCode, fdb.stderr);
  }
  const fdbEntries = fdb.exitCode === 0 ? ((parseJsonStream(fdb.stdout)[0] as BridgeFdbJson[] | undefined) ?? []) : [];
  const state: KernelState = {
    routes: routes.flatMap((r) => toRoute(r)),
    neighbours: link === undefined ? [] : neighbours.flatMap((n) => toNeighbour(n, vxlanDevice)),
    fdb: link === undefined ? [] : fdbEntries.flatMap((f) => toFdb(f, vxlanDevice)),
  };
  if (link !== undefined) state.vxlan = toVxlanDevice(link, vxlanDevice);
  return state;
}

/** iproute2 prints host routes without a length ("10.0.0.5"); the model always carries one. */
export function withPrefix(dst: string): string {
  if (dst.includes("/")) return dst;
  return `${dst}/${ipFamilyOf(dst) === "IPv6" ? 128 : 32}`;
}

/** A route's destination as iproute2 prints it ("default", "10.0.0.5", "10.0.0.0/24") as a CIDR. */
export function routeDestination(dst: string, gateway: string | undefined): string {
  if (dst === "default") return ipFamilyOf(gateway ?? "") === "IPv6" ? "::/0" : "0.0.0.0/0";
  return withPrefix(dst);
}

function toRoute(r: IpRouteJson): Route[] {
  if (r.dst === undefined || r.gateway === undefined || r.dev === undefined) return [];
  if (r.table !== undefined && r.table !== "main") return [];
  const dst = routeDestination(r.dst, r.gateway);
  return [{ family: ipFamilyOf(dst) ?? "IPv4", dst, via: r.gateway, dev: r.dev, onlink: (r.flags ?? []).includes("onlink") }];
}

function toNeighbour(n: IpNeighJson, dev: string): Neighbour[] {
  if (n.dev !== dev || n.dst === undefined || n.lladdr === undefined) return [];
  if (!(n.state ?? []).includes("PERMANENT")) return [];
  return [{ family: ipFamilyOf(n.dst) ?? "IPv4", ip: n.dst, mac: n.lladdr.toLowerCase(), dev }];
}

function toFdb(f: BridgeFdbJson, dev: string): FdbEntry[] {
  if (f.mac === undefined || f.dst === undefined) return [];
  if (f.ifname !== undefined && f.ifname !== dev) return [];
  return [{ mac: f.mac.toLowerCase(), dst: f.dst, dev }];
}

export function toVxlanDevice(link: IpLinkJson, name: string): VxlanDevice {
  const data = link.linkinfo?.info_data ?? {};
  const local = data.local ?? data.local6 ?? "";
  return {
    name,
    vni: data.id ?? 0,
    port: data.port ?? 0,
    local,
    underlayFamily: ipFamilyOf(local) ?? "IPv4",
    underlayDevice: data.link ?? "",
    mac: (link.address ?? "").toLowerCase(),
    mtu: link.mtu ?? 0,
    addresses: linkAddresses(link),
  };
}

/** The fields `keys` of `from` that are set (neither undefined nor null), in the order of `keys`. */
export function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (from[key] !== undefined && from[key] !== null) out[key] = from[key];
  return out;
}

/** A link's global-scope addresses with their prefix ("10.244.1.1/24"). */
export function linkAddresses(link: IpLinkJson | undefined): string[] {
  return (link?.addr_info ?? [])
    .filter((a) => a.scope === "global" && a.local !== undefined && a.prefixlen !== undefined)
    .map((a) => `${a.local}/${a.prefixlen}`);
}
