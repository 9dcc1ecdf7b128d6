import { type CoreError, coreError, err, ok, type Result } from "../errors.ts";
import { type Cidr, cidrContains, formatCidr, hostMask, safeParseCidr } from "../cidr/index.ts";
import { formatIp, type IpAddress, type IpFamily, safeParseIp } from "../ip/index.ts";
import { defaultVtepMac, type ParsedIp, parsePodCidr, parseUnderlayIp } from "./parse-cache.ts";
import {
  type ClusterSnapshot,
  type DesiredNetwork,
  type FdbEntry,
  type NetworkOptions,
  type Neighbour,
  type NodeSnapshot,
  type PeerPath,
  type Route,
  type SkippedPeer,
  VXLAN_OVERHEAD,
  type VxlanDevice,
} from "./types.ts";
import { safeParseVtepMac, vtepMacFor } from "./vtep-mac.ts";
import { INTERFACE_NAME_PATTERN, INTERFACE_NAME_RULE } from "../interface-name.ts";

const FAMILIES: readonly IpFamily[] = ["IPv4", "IPv6"];
// Linux IFNAMSIZ is 16 including the NUL; names must not contain '/', ':' or whitespace.

/** Peer skip codes (`SkippedPeer.code`): callers branch on these, never on the message. */
export const SKIP_CODES = {
  duplicateName: "ERR_PEER_DUPLICATE_NAME",
  invalidName: "ERR_PEER_INVALID_NAME",
  invalidUnderlayIp: "ERR_PEER_INVALID_UNDERLAY_IP",
  noPodCidr: "ERR_PEER_NO_POD_CIDR",
  invalidPodCidr: "ERR_PEER_INVALID_POD_CIDR",
  podCidrOutsideCluster: "ERR_PEER_POD_CIDR_OUTSIDE_CLUSTER",
  podCidrOverlap: "ERR_PEER_POD_CIDR_OVERLAP",
  noUnderlayForFamily: "ERR_PEER_NO_UNDERLAY_FOR_FAMILY",
  notAdjacent: "ERR_PEER_NOT_ADJACENT",
  invalidMac: "ERR_PEER_INVALID_MAC",
  duplicateMac: "ERR_PEER_DUPLICATE_MAC",
} as const;

interface PeerFamily {
  node: string;
  family: IpFamily;
  cidr: Cidr;
  /** Canonical CIDR (route dst) and first address (VTEP IP). */
  text: string;
  vtep: string;
  /** Set by the overlap scan: the node whose pod CIDR this one overlaps. */
  overlapsWith?: string;
}

interface Peer {
  name: string;
  underlay: Partial<Record<IpFamily, ParsedIp>>;
  families: PeerFamily[];
  mac: string | CoreError;
}

/**
 * This node's desired kernel state: per remote node and family, a host-gw route (`dst via Rip dev ext`) or the
 * VXLAN triple (neighbour Rvtep -> Rmac, FDB Rmac -> Rip, route `dst via Rvtep dev vx onlink`), plus the VXLAN
 * device and the pod MTU. Peers with missing or invalid data are left out and listed in `skipped`; a failed
 * Result means this node itself or the options are unusable.
 * @example
 * const desired = computeNodeNetwork(cluster, "node-1", { backend: "auto", vni: 1, vxlanPort: 8472,
 *   underlayDevice: "eth0", underlayMtu: 1500, underlaySubnets: ["172.31.0.0/24"], vxlanDevice: "flatnet.1" });
 * if (desired.success) console.log(desired.data.routes);
 */
export function computeNodeNetwork(cluster: ClusterSnapshot, selfName: string, options: NetworkOptions): Result<DesiredNetwork> {
  const checked = checkOptions(options);
  if (!checked.success) return checked;
  const underlaySubnets = checked.data;

  const clusterCidrs: Cidr[] = [];
  for (const text of list(cluster.clusterCidrs)) {
    const parsed = safeParseCidr(text);
    if (!parsed.success) return err(coreError("ERR_INVALID_CONFIG", `cluster CIDR ${JSON.stringify(text)} is invalid: ${parsed.error.message}`, { value: text }, parsed.error));
    clusterCidrs.push(parsed.data);
  }
  if (clusterCidrs.length === 0) return err(coreError("ERR_INVALID_CONFIG", "the cluster has no cluster CIDR; at least one (per family) is required"));

  const nodes = list(cluster.nodes);
  const selfNode = nodes.find((node) => node?.name === selfName);
  if (selfNode === undefined) {
    return err(coreError("ERR_NOT_FOUND", `node ${JSON.stringify(selfName)} is not in the cluster snapshot (${nodes.length} nodes)`, { node: selfName }));
  }
  const self = checkSelf(selfNode, clusterCidrs);
  if (!self.success) return self;
  const { underlay: selfUnderlay, podCidrs: selfCidrs, mac: selfMac } = self.data;

  const skipped: SkippedPeer[] = [];
  const skip = (node: string, code: string, message: string, family?: IpFamily): void => {
    skipped.push(family === undefined ? { node, code, message } : { node, family, code, message });
  };

  // 1. Parse every peer; whole-peer problems skip the peer, family problems skip that family.
  const peers: Peer[] = [];
  const seen = new Set<string>([selfName]);
  let selfSeen = false;
  for (const node of nodes) {
    if (node === null || typeof node !== "object") continue;
    if (node.name === selfName) {
      if (selfSeen) skip(node.name, SKIP_CODES.duplicateName, `node ${JSON.stringify(node.name)} appears more than once in the snapshot; only the first is used`);
      selfSeen = true;
      continue;
    }
    const peer = parsePeer(node, clusterCidrs, selfUnderlay, seen, skip);
    if (peer !== undefined) peers.push(peer);
  }

  // 2. Overlapping pod CIDRs: CIDRs overlap only by nesting, so after sorting a running widest range finds every clash.
  markOverlaps(peers, selfCidrs, selfName);

  // 3. Choose a path per peer family; VXLAN needs a MAC and an underlay IP of the device's family.
  const deviceFamily = selfUnderlay[0]!.family;
  const usesDevice = options.backend !== "host-gw";
  const chosen: { peer: Peer; paths: { family: PeerFamily; mode: "host-gw" | "vxlan" }[] }[] = [];
  for (const peer of peers) {
    const paths: { family: PeerFamily; mode: "host-gw" | "vxlan" }[] = [];
    for (const family of peer.families) {
      if (family.overlapsWith !== undefined) {
        skip(peer.name, SKIP_CODES.podCidrOverlap, `pod CIDR ${formatCidr(family.cidr)} of node ${JSON.stringify(peer.name)} overlaps the pod CIDR of node ${JSON.stringify(family.overlapsWith)}`, family.family);
        continue;
      }
      const mode = chooseMode(options, underlaySubnets, peer.underlay[family.family]?.ip);
      if (mode === "host-gw") {
        const rip = peer.underlay[family.family]?.ip;
        if (rip === undefined) {
          skip(peer.name, SKIP_CODES.noUnderlayForFamily, `node ${JSON.stringify(peer.name)} has an ${family.family} pod CIDR but no ${family.family} underlay IP for a host-gw route`, family.family);
          continue;
        }
        if (options.backend === "host-gw" && underlaySubnets.some((subnet) => subnet.family === family.family) && !underlaySubnets.some((subnet) => cidrContains(subnet, rip))) {
          skip(peer.name, SKIP_CODES.notAdjacent, `node ${JSON.stringify(peer.name)} underlay IP ${formatIp(rip)} is outside this node's L2 subnets (${options.underlaySubnets.join(", ")}); host-gw needs L2 adjacency (use backend "auto" or "vxlan")`, family.family);
          continue;
        }
      } else {
        if (peer.underlay[deviceFamily] === undefined) {
          skip(peer.name, SKIP_CODES.noUnderlayForFamily, `node ${JSON.stringify(peer.name)} has no ${deviceFamily} underlay IP, the VXLAN device's underlay family`, family.family);
          continue;
        }
        if (typeof peer.mac !== "string") {
          skip(peer.name, SKIP_CODES.invalidMac, `node ${JSON.stringify(peer.name)}: ${peer.mac.message}`, family.family);
          continue;
        }
      }
      paths.push({ family, mode });
    }
    if (paths.length > 0) chosen.push({ peer, paths });
  }

  // 4. Two VTEPs with one MAC cannot both be reached: the FDB maps a MAC to one underlay IP.
  const macOwner = new Map<string, string>([[selfMac, selfName]]);
  const sharedMacs = new Map<string, string[]>();
  for (const { peer, paths } of chosen) {
    if (typeof peer.mac === "string" && paths.some((path) => path.mode === "vxlan")) {
      const owner = macOwner.get(peer.mac);
      if (owner === undefined) macOwner.set(peer.mac, peer.name);
      else sharedMacs.set(peer.mac, [...(sharedMacs.get(peer.mac) ?? [owner]), peer.name]);
    }
  }

  const vxlanDevice = options.vxlanDevice;
  const routes: Route[] = [];
  const neighbours: Neighbour[] = [];
  const fdb: FdbEntry[] = [];
  const programmed: PeerPath[] = [];
  if (!isSorted(chosen, (a, b) => compareText(a.peer.name, b.peer.name))) chosen.sort((a, b) => compareText(a.peer.name, b.peer.name));
  for (const { peer, paths } of chosen) {
    let fdbAdded = false;
    for (const { family, mode } of paths) {
      const { vtep, text: dst } = family;
      if (mode === "host-gw") {
        routes.push({ family: family.family, dst, via: peer.underlay[family.family]!.text, dev: options.underlayDevice, onlink: false });
      } else {
        const mac = peer.mac as string;
        const owners = sharedMacs.get(mac);
        if (owners !== undefined) {
          const others = owners.filter((owner) => owner !== peer.name).map((owner) => JSON.stringify(owner));
          skip(peer.name, SKIP_CODES.duplicateMac, `node ${JSON.stringify(peer.name)} VTEP MAC ${mac} is also the VTEP MAC of ${others.join(", ")}`, family.family);
          continue;
        }
        neighbours.push({ family: family.family, ip: vtep, mac, dev: vxlanDevice });
        if (!fdbAdded) {
          fdb.push({ mac, dst: peer.underlay[deviceFamily]!.text, dev: vxlanDevice });
          fdbAdded = true;
        }
        // onlink: the VTEP IP is on no connected subnet of the device (its own address is a /32 or /128).
        routes.push({ family: family.family, dst, via: vtep, dev: vxlanDevice, onlink: true });
      }
      programmed.push({ node: peer.name, family: family.family, podCidr: dst, mode });
    }
  }

  const podMtu = usesDevice ? options.underlayMtu - VXLAN_OVERHEAD[deviceFamily] : options.underlayMtu;
  const desired: DesiredNetwork = {
    node: selfName,
    podMtu,
    podCidrs: selfCidrs.map(formatCidr),
    routes,
    neighbours,
    fdb,
    peers: programmed,
    skipped: skipped.sort((a, b) => compareText(a.node, b.node) || compareText(a.family ?? "", b.family ?? "")),
  };
  if (usesDevice) {
    const device: VxlanDevice = {
      name: vxlanDevice,
      vni: options.vni,
      port: options.vxlanPort,
      local: formatIp(selfUnderlay[0]!),
      underlayFamily: deviceFamily,
      underlayDevice: options.underlayDevice,
      mac: selfMac,
      mtu: podMtu,
      addresses: selfCidrs.map((cidr) => `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.family === "IPv4" ? 32 : 128}`),
    };
    desired.vxlan = device;
  }
  const minimum = selfCidrs.some((cidr) => cidr.family === "IPv6") ? 1280 : 576;
  if (podMtu < minimum) {
    return err(coreError("ERR_INVALID_CONFIG", `underlay MTU ${options.underlayMtu} leaves a pod MTU of ${podMtu}; ${minimum === 1280 ? "IPv6 needs at least 1280" : "IPv4 needs at least 576"}`, { underlayMtu: options.underlayMtu, podMtu }));
  }
  return ok(desired);
}

function checkOptions(options: NetworkOptions): Result<Cidr[]> {
  const fail = (message: string, details: Record<string, unknown>) => err(coreError("ERR_INVALID_CONFIG", message, details));
  if (options.backend !== "host-gw" && options.backend !== "vxlan" && options.backend !== "auto") {
    return fail(`backend ${JSON.stringify(options.backend)} is not one of "host-gw", "vxlan", "auto"`, { backend: options.backend });
  }
  if (!Number.isInteger(options.vni) || options.vni < 1 || options.vni > 16_777_215) {
    return fail(`vni ${JSON.stringify(options.vni)} is outside 1-16777215 (24 bits)`, { vni: options.vni });
  }
  if (!Number.isInteger(options.vxlanPort) || options.vxlanPort < 1 || options.vxlanPort > 65_535) {
    return fail(`vxlanPort ${JSON.stringify(options.vxlanPort)} is outside 1-65535`, { vxlanPort: options.vxlanPort });
  }
  if (!Number.isInteger(options.underlayMtu) || options.underlayMtu < 576 || options.underlayMtu > 65_535) {
    return fail(`underlayMtu ${JSON.stringify(options.underlayMtu)} is outside 576-65535`, { underlayMtu: options.underlayMtu });
  }
  for (const key of ["underlayDevice", "vxlanDevice"] as const) {
    if (typeof options[key] !== "string" || !INTERFACE_NAME_PATTERN.test(options[key])) {
      return fail(`${key} ${JSON.stringify(options[key])} is refused: ${INTERFACE_NAME_RULE}`, { [key]: options[key] });
    }
  }
  if (options.backend !== "host-gw" && options.vxlanDevice === options.underlayDevice) {
    return fail(`vxlanDevice and underlayDevice are both ${JSON.stringify(options.vxlanDevice)}; they must differ`, { vxlanDevice: options.vxlanDevice });
  }
  const subnets: Cidr[] = [];
  for (const text of list(options.underlaySubnets)) {
    // Host bits are accepted: "172.31.0.11/24" as `ip addr` shows it names the subnet 172.31.0.0/24.
    const parsed = safeParseCidr(text, { maskHostBits: true });
    if (!parsed.success) return fail(`underlay subnet ${JSON.stringify(text)} is invalid: ${parsed.error.message}`, { value: text });
    subnets.push(parsed.data);
  }
  return ok(subnets);
}

function checkSelf(node: NodeSnapshot, clusterCidrs: readonly Cidr[]): Result<{ underlay: IpAddress[]; podCidrs: Cidr[]; mac: string }> {
  const fail = (message: string) => err(coreError("ERR_INVALID_STATE", `this node ${JSON.stringify(node.name)} ${message}`, { node: node.name }));
  const underlay: IpAddress[] = [];
  for (const text of list(node.underlayIps)) {
    const parsed = safeParseIp(text);
    if (!parsed.success) return fail(`has an invalid underlay IP: ${parsed.error.message}`);
    if (underlay.some((ip) => ip.family === parsed.data.family)) return fail(`has two ${parsed.data.family} underlay IPs; at most one per family`);
    underlay.push(parsed.data);
  }
  if (underlay.length === 0) return fail("has no underlay IP");
  const podCidrs: Cidr[] = [];
  for (const text of list(node.podCidrs)) {
    const parsed = safeParseCidr(text);
    if (!parsed.success) return fail(`has an invalid pod CIDR: ${parsed.error.message}`);
    if (podCidrs.some((cidr) => cidr.family === parsed.data.family)) return fail(`has two ${parsed.data.family} pod CIDRs; at most one per family`);
    if (!clusterCidrs.some((cluster) => cidrContains(cluster, parsed.data))) return fail(`has pod CIDR ${JSON.stringify(text)} outside every cluster CIDR`);
    podCidrs.push(parsed.data);
  }
  if (podCidrs.length === 0) return fail("has no pod CIDR yet (it is allocated when the node registers)");
  podCidrs.sort((a, b) => (a.family === b.family ? 0 : a.family === "IPv4" ? -1 : 1));
  const mac = node.vtepMac === undefined ? ok(vtepMacFor(node.name)) : safeParseVtepMac(node.vtepMac);
  if (!mac.success) return fail(`has an unusable VTEP MAC: ${mac.error.message}`);
  return ok({ underlay, podCidrs, mac: mac.data });
}

function parsePeer(
  node: NodeSnapshot,
  clusterCidrs: readonly Cidr[],
  selfUnderlay: readonly IpAddress[],
  seen: Set<string>,
  skip: (node: string, code: string, message: string, family?: IpFamily) => void,
): Peer | undefined {
  const name = node.name;
  if (typeof name !== "string" || name.length === 0) {
    skip(String(name), SKIP_CODES.invalidName, `node name ${JSON.stringify(name)} is not a non-empty string`);
    return undefined;
  }
  if (seen.has(name)) {
    skip(name, SKIP_CODES.duplicateName, `node ${JSON.stringify(name)} appears more than once in the snapshot; only the first is used`);
    return undefined;
  }
  seen.add(name);

  const underlay: Partial<Record<IpFamily, ParsedIp>> = {};
  for (const text of list(node.underlayIps)) {
    const parsed = parseUnderlayIp(text);
    if (!parsed.success) {
      skip(name, SKIP_CODES.invalidUnderlayIp, `node ${JSON.stringify(name)} underlay IP ${JSON.stringify(text)} is invalid: ${parsed.error.message}`);
      return undefined;
    }
    const ip = parsed.data.ip;
    if (underlay[ip.family] !== undefined) {
      skip(name, SKIP_CODES.invalidUnderlayIp, `node ${JSON.stringify(name)} has two ${ip.family} underlay IPs (${underlay[ip.family]!.text}, ${parsed.data.text}); at most one per family`);
      return undefined;
    }
    if (selfUnderlay.some((own) => own.family === ip.family && own.value === ip.value)) {
      skip(name, SKIP_CODES.invalidUnderlayIp, `node ${JSON.stringify(name)} underlay IP ${parsed.data.text} is this node's own underlay IP`);
      return undefined;
    }
    underlay[ip.family] = parsed.data;
  }

  const podCidrTexts = list(node.podCidrs);
  if (podCidrTexts.length === 0) {
    skip(name, SKIP_CODES.noPodCidr, `node ${JSON.stringify(name)} has no pod CIDR yet`);
    return undefined;
  }
  const families: PeerFamily[] = [];
  const outside: Cidr[] = [];
  for (const text of podCidrTexts) {
    const parsed = parsePodCidr(text);
    if (!parsed.success) {
      skip(name, SKIP_CODES.invalidPodCidr, `node ${JSON.stringify(name)} pod CIDR ${JSON.stringify(text)} is invalid: ${parsed.error.message}`);
      return undefined;
    }
    const cidr = parsed.data.cidr;
    if (families.some((family) => family.family === cidr.family) || outside.some((other) => other.family === cidr.family)) {
      skip(name, SKIP_CODES.invalidPodCidr, `node ${JSON.stringify(name)} has two ${cidr.family} pod CIDRs; at most one per family`);
      return undefined;
    }
    if (!clusterCidrs.some((cluster) => cidrContains(cluster, cidr))) {
      const same = clusterCidrs.filter((cluster) => cluster.family === cidr.family).map(formatCidr);
      skip(name, SKIP_CODES.podCidrOutsideCluster, `node ${JSON.stringify(name)} pod CIDR ${formatCidr(cidr)} is outside the cluster CIDR${same.length === 0 ? `s (none is ${cidr.family})` : ` ${same.join(", ")}`}`, cidr.family);
      outside.push(cidr);
      continue;
    }
    families.push({ node: name, family: cidr.family, cidr, text: parsed.data.text, vtep: parsed.data.vtep });
  }
  if (families.length === 2 && families[0]!.family === "IPv6") families.reverse(); // IPv4 first

  let mac: string | CoreError;
  if (node.vtepMac === undefined) {
    mac = defaultVtepMac(name);
  } else {
    const parsed = safeParseVtepMac(node.vtepMac);
    mac = parsed.success ? parsed.data : parsed.error;
  }
  return { name, underlay, families, mac };
}

function markOverlaps(peers: readonly Peer[], selfCidrs: readonly Cidr[], selfName: string): void {
  const entries: PeerFamily[] = selfCidrs.map((cidr) => ({ node: selfName, family: cidr.family, cidr, text: "", vtep: "" }));
  for (const peer of peers) entries.push(...peer.families);
  for (const family of FAMILIES) {
    const sorted = entries.filter((entry) => entry.family === family);
    const order = (a: PeerFamily, b: PeerFamily) => (a.cidr.network < b.cidr.network ? -1 : a.cidr.network > b.cidr.network ? 1 : a.cidr.prefix - b.cidr.prefix);
    if (!isSorted(sorted, order)) sorted.sort(order);
    let widest: PeerFamily | undefined;
    let widestEnd = -1n;
    for (const entry of sorted) {
      const end = entry.cidr.network | hostMask(family, entry.cidr.prefix);
      if (widest !== undefined && entry.cidr.network <= widestEnd) {
        entry.overlapsWith ??= widest.node;
        widest.overlapsWith ??= entry.node;
      }
      if (end > widestEnd) {
        widest = entry;
        widestEnd = end;
      }
    }
  }
}

function chooseMode(options: NetworkOptions, subnets: readonly Cidr[], peerIp: IpAddress | undefined): "host-gw" | "vxlan" {
  if (options.backend !== "auto") return options.backend;
  return peerIp !== undefined && subnets.some((subnet) => cidrContains(subnet, peerIp)) ? "host-gw" : "vxlan";
}

function list<T>(value: readonly T[] | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}

function isSorted<T>(items: readonly T[], order: (a: T, b: T) => number): boolean {
  for (let index = 1; index < items.length; index++) if (order(items[index - 1]!, items[index]!) > 0) return false;
  return true;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
