import { cidrEquals, safeParseCidr } from "../cidr/index.ts";
import { ipFamilyOf } from "../ip/index.ts";
import { cidrIncludes, probeAddressFamily, unmapAddress } from "./address.ts";
import { ruleMatches, type FirewallRule } from "./firewall.ts";
import type { Diagnosis, PairResult } from "./types.ts";

export interface StateRoute { dst: string; via?: string; dev?: string; /** Route MTU (`ip route ... mtu N`), when set. */ mtu?: number }
export interface StateNeighbour { ip: string; mac: string; dev?: string }
export interface StateFdb { mac: string; dst: string; dev?: string }
export interface StateTables { routes: StateRoute[]; neighbours: StateNeighbour[]; fdb: StateFdb[] }

/** What one node's agent says about itself (its `/v1/state` and firewall), reduced to what diagnosis reads. */
export interface NodeProbeState {
  node: string;
  /** False when the agent did not answer: every other field is then unknown. */
  reachable: boolean;
  error?: string;
  podCidrs: string[];
  nodeIps: string[];
  podMtu?: number;
  /** MTU of the underlay device as the kernel has it now. */
  underlayMtu?: number;
  /** Encapsulation overhead on the path to peers: 0 host-gw, 50 vxlan over IPv4, 70 over IPv6. */
  encapOverhead?: number;
  desired?: StateTables;
  actual?: StateTables;
  /** MAC of the node's own VXLAN device: what peers' neighbour entries for its VTEP must hold. */
  vtepMac?: string;
  /** MAC of the node's underlay device (what peers' neighbour entries for its underlay IP must hold). */
  underlayMac?: string;
  /** Neighbour entries on the underlay device (next hops of host-gw routes). */
  underlayNeighbours?: StateNeighbour[];
  /**
   * The kernel's neighbour (ARP / ND) table, shared by every namespace of a host: overflows seen during the
   * run (table_fulls), current entries and the gc_thresh3 limit. A full table refuses new neighbours.
   */
  neighbourTable?: { family: "IPv4" | "IPv6"; overflows: number; entries?: number; limit?: number }[];
  /** Rules of the node's nftables ruleset that drop, reject or rewrite addresses. */
  firewall?: FirewallRule[];
}

/**
 * Explain one failed or inconclusive pair from the two nodes' own state: agent unreachable, pod IP outside
 * its node's CIDR, a missing or wrong route (either direction), a missing or stale VTEP neighbour, a missing
 * FDB entry, a path MTU below the pod MTU, a SNAT or drop rule. `unexplained` when nothing matches.
 * @example diagnosePair(result, states) // [{ code: "missing-route", node: "node-1", message: "node-1 has no route to 10.244.3.0/24" }]
 */
export function diagnosePair(result: PairResult, states: ReadonlyMap<string, NodeProbeState>): Diagnosis[] {
  if (result.verdict !== "failed" && result.verdict !== "inconclusive") return [];
  const { pair } = result;
  const src = states.get(pair.src.node);
  const dst = states.get(pair.dst.node);
  const out: Diagnosis[] = [];
  const push = (d: Diagnosis): void => {
    if (!out.some((o) => o.code === d.code && o.node === d.node && o.message === d.message)) out.push(d);
  };

  for (const [state, name] of [[src, pair.src.node], [dst, pair.dst.node]] as const) {
    if (state === undefined || !state.reachable) {
      push({
        code: "agent-unreachable",
        node: name,
        message: `the agent of ${name} did not answer${state?.error ? ` (${state.error})` : ""}`,
      });
    }
  }
  if (result.verdict === "inconclusive") return out;

  // A node endpoint's address is its node IP, outside the pod CIDRs by design.
  for (const [state, ip, kind] of [[src, pair.src.ip, pair.src.kind], [dst, pair.dst.ip, pair.dst.kind]] as const) {
    if (kind !== "node" && state?.reachable && state.podCidrs.length > 0 && !state.podCidrs.some((c) => cidrIncludes(c, ip))) {
      const own = state.podCidrs.filter((c) => sameFamily(c, ip));
      push({
        code: "pod-ip-outside-cidr",
        node: state.node,
        message: `${unmapAddress(ip)} is outside ${state.node}'s pod CIDR${own.length > 0 ? ` ${own.join(", ")}` : ""}`,
        details: { ip: unmapAddress(ip), podCidrs: state.podCidrs },
      });
    }
  }

  const dataPath = result.problems.some((p) => p === "tcp-unreachable" || p === "udp-unreachable" || p === "udp-loss");
  if (dataPath && pair.path === "cross-node" && src?.reachable && dst?.reachable) {
    checkForwarding(src, dst, pair.dst.ip, push);
    checkForwarding(dst, src, pair.src.ip, push); // the reply needs the way back
  }

  const mtuProblem = result.problems.some((p) => p === "mtu-tcp-blackhole" || p === "mtu-udp-blackhole");
  if (mtuProblem) {
    for (const [from, to, ip] of [[src, dst, pair.dst.ip], [dst, src, pair.src.ip]] as const) {
      const cidr = to?.podCidrs.find((c) => cidrIncludes(c, ip));
      const route = cidr === undefined ? undefined : from?.actual?.routes.find((r) => sameCidr(r.dst, cidr));
      const podMtu = from?.podMtu ?? to?.podMtu;
      if (from !== undefined && route?.mtu !== undefined && podMtu !== undefined && route.mtu < podMtu) {
        push({
          code: "mtu-below-pod-mtu",
          node: from.node,
          message: `path MTU ${route.mtu} below pod MTU ${podMtu} on ${from.node} (route to ${cidr})`,
          details: { pathMtu: route.mtu, podMtu, route },
        });
      }
    }
    for (const state of [src, dst]) {
      if (state?.reachable !== true || state.underlayMtu === undefined || state.podMtu === undefined) continue;
      const path = state.underlayMtu - (state.encapOverhead ?? 0);
      if (path < state.podMtu) {
        push({
          code: "mtu-below-pod-mtu",
          node: state.node,
          message: `path MTU ${path} below pod MTU ${state.podMtu} on ${state.node} (underlay MTU ${state.underlayMtu}${state.encapOverhead ? `, encapsulation ${state.encapOverhead}` : ""})`,
          details: { pathMtu: path, podMtu: state.podMtu, underlayMtu: state.underlayMtu },
        });
      }
    }
  }

  const from = unmapAddress(pair.src.ip);
  const to = unmapAddress(pair.dst.ip);
  // A node sends from whichever of its own addresses the route selects (node IP, gateway, VTEP): rules may name any.
  const froms = [...new Set([from, ...(pair.src.kind === "node" ? (pair.src.sourceIps ?? []).map(unmapAddress) : [])])];
  if (result.problems.includes("nat-violation")) {
    for (const state of uniqueStates(src, dst)) {
      for (const rule of state.firewall ?? []) {
        // A packet to a node's own address is delivered locally there: that node's postrouting never sees it.
        if (pair.dst.kind === "node" && state.node === pair.dst.node && state.node !== pair.src.node && rule.hook === "postrouting") continue;
        const source = froms.find((f) => ruleMatches(rule, f, to));
        if ((rule.action === "snat" || rule.action === "masquerade") && source !== undefined) {
          push({
            code: "snat-rule",
            node: state.node,
            message: `${state.node} rewrites the source of ${source} -> ${to}: ${rule.action}${rule.to ? ` to ${rule.to}` : result.nat.observedSrc !== undefined && rule.source !== undefined ? ` to ${unmapAddress(result.nat.observedSrc)}` : ""} (${ruleLocation(rule)})`,
            ...(rule.fix === undefined ? {} : { fix: rule.fix }),
            details: { rule },
          });
        }
      }
    }
  }
  if (mtuProblem) {
    for (const state of uniqueStates(src, dst)) {
      for (const rule of state.firewall ?? []) {
        if ((rule.action === "drop" || rule.action === "reject") && rule.icmpOnly === true) {
          push({
            code: "drop-rule",
            node: state.node,
            message: `${state.node} ${rule.action === "drop" ? "drops" : "rejects"} ICMP (${ruleLocation(rule)}): path MTU discovery cannot work`,
            ...(rule.fix === undefined ? {} : { fix: rule.fix }),
            details: { rule },
          });
        }
      }
    }
  }
  if (dataPath) {
    for (const state of uniqueStates(src, dst)) {
      for (const rule of state.firewall ?? []) {
        const source = froms.find((f) => ruleMatches(rule, f, to) || ruleMatches(rule, to, f));
        if ((rule.action === "drop" || rule.action === "reject") && rule.icmpOnly !== true && source !== undefined) {
          push({
            code: "drop-rule",
            node: state.node,
            message: `${state.node} ${rule.action === "drop" ? "drops" : "rejects"} ${source} <-> ${to} (${ruleLocation(rule)})`,
            ...(rule.fix === undefined ? {} : { fix: rule.fix }),
            details: { rule },
          });
        }
      }
    }
  }
  if (out.length === 0 && dataPath) {
    for (const state of uniqueStates(src, dst)) {
      const table = state.neighbourTable?.find((t) => t.family === pair.family && t.overflows > 0);
      if (table === undefined) continue;
      const size = table.entries !== undefined && table.limit !== undefined ? ` (${table.entries} entries, gc_thresh3 ${table.limit})` : "";
      push({
        code: "neighbour-table-full",
        message: `the kernel's ${table.family} neighbour table overflowed ${table.overflows} times during the run${size}: new neighbours cannot be resolved`,
        details: { ...table },
      });
      break; // one shared table: once is enough
    }
  }
  if (out.length === 0) {
    push({ code: "unexplained", message: `no cause found in the state of ${pair.src.node} and ${pair.dst.node}` });
  }
  return out;
}

/** Forwarding on `from` towards an address of `to`: route, VTEP neighbour, FDB, against `from`'s desired state. */
function checkForwarding(from: NodeProbeState, to: NodeProbeState, ip: string, push: (d: Diagnosis) => void): void {
  // An address outside the peer's CIDRs is reported as such; no route is expected for it.
  const cidr = to.podCidrs.find((c) => cidrIncludes(c, ip));
  if (cidr === undefined || from.actual === undefined) return;
  const actual = from.actual.routes.find((r) => sameCidr(r.dst, cidr));
  const desired = from.desired?.routes.find((r) => sameCidr(r.dst, cidr));
  if (actual === undefined) {
    push({
      code: "missing-route",
      node: from.node,
      message: `${from.node} has no route to ${cidr} (${to.node}'s pod CIDR)`,
      details: { cidr, expected: desired },
    });
    return;
  }
  if (desired !== undefined && (norm(desired.via) !== norm(actual.via) || (desired.dev ?? actual.dev) !== actual.dev)) {
    push({
      code: "wrong-route",
      node: from.node,
      message: `${from.node} routes ${cidr} via ${actual.via ?? "-"} dev ${actual.dev ?? "-"}, expected via ${desired.via ?? "-"} dev ${desired.dev ?? "-"}`,
      details: { cidr, actual, desired },
    });
  }
  const via = desired?.via ?? actual.via;
  if (via === undefined) return;
  // host-gw: the next hop is the peer's underlay IP; its ARP/ND entry must hold the peer's real MAC.
  const hop = from.underlayNeighbours?.find((n) => norm(n.ip) === norm(via));
  if (hop !== undefined && to.underlayMac !== undefined && to.nodeIps.some((ip) => norm(ip) === norm(via)) && hop.mac.toLowerCase() !== to.underlayMac.toLowerCase()) {
    push({
      code: "stale-neighbour",
      node: from.node,
      message: `${from.node}'s neighbour entry for ${to.node} (${norm(via)}) is stale: ${hop.mac}, ${to.node}'s underlay MAC is ${to.underlayMac}`,
      details: { ip: norm(via), actual: hop.mac, expected: to.underlayMac },
    });
  }
  const wantFromDesired = from.desired?.neighbours.find((n) => norm(n.ip) === norm(via));
  if (wantFromDesired === undefined && to.vtepMac !== undefined) {
    // No desired state (agent down): the peer's own VXLAN device MAC is what the entry must hold.
    const have = from.actual.neighbours.find((n) => norm(n.ip) === norm(via));
    if (have !== undefined && have.mac.toLowerCase() !== to.vtepMac.toLowerCase()) {
      push({
        code: "stale-vtep-mac",
        node: from.node,
        message: `VTEP MAC of ${to.node} is stale on ${from.node}: ${norm(via)} -> ${have.mac}, ${to.node}'s VXLAN device is ${to.vtepMac}`,
        details: { vtep: norm(via), actual: have.mac, expected: to.vtepMac },
      });
    }
  }
  if (from.desired === undefined) return;
  const wantNeighbour = from.desired.neighbours.find((n) => norm(n.ip) === norm(via));
  if (wantNeighbour === undefined) return; // host-gw: no neighbour of ours to check
  const haveNeighbour = from.actual.neighbours.find((n) => norm(n.ip) === norm(via));
  if (haveNeighbour === undefined) {
    push({ code: "missing-vtep-neighbour", node: from.node, message: `${from.node} has no neighbour entry for ${to.node}'s VTEP ${via}` });
  } else if (haveNeighbour.mac.toLowerCase() !== wantNeighbour.mac.toLowerCase()) {
    push({
      code: "stale-vtep-mac",
      node: from.node,
      message: `VTEP MAC of ${to.node} is stale on ${from.node}: ${via} -> ${haveNeighbour.mac}, ${to.node} publishes ${wantNeighbour.mac}`,
      details: { vtep: via, actual: haveNeighbour.mac, expected: wantNeighbour.mac },
    });
  }
  const wantFdb = from.desired.fdb.find((f) => f.mac.toLowerCase() === wantNeighbour.mac.toLowerCase());
  if (wantFdb !== undefined && !from.actual.fdb.some((f) => f.mac.toLowerCase() === wantFdb.mac.toLowerCase() && norm(f.dst) === norm(wantFdb.dst))) {
    push({ code: "missing-fdb", node: from.node, message: `${from.node} has no FDB entry ${wantFdb.mac} -> ${wantFdb.dst} for ${to.node}` });
  }
}

/** `nft ip t c #4` for an nft rule; `iptables-nft nat POSTROUTING rule 3: -s ... -j MASQUERADE` for iptables. */
export function ruleLocation(rule: FirewallRule): string {
  if (rule.source === undefined || rule.source === "nft") return `nft ${rule.where}`;
  return rule.text === undefined ? rule.where : `${rule.where}: ${rule.text}`;
}

function uniqueStates(...states: (NodeProbeState | undefined)[]): NodeProbeState[] {
  const seen = new Set<string>();
  return states.filter((s): s is NodeProbeState => s !== undefined && s.reachable && !seen.has(s.node) && (seen.add(s.node), true));
}

function sameFamily(cidr: string, ip: string): boolean {
  const family = ipFamilyOf(cidr);
  return family !== undefined && family === probeAddressFamily(unmapAddress(ip));
}

function sameCidr(a: string, b: string): boolean {
  const left = safeParseCidr(a);
  const right = safeParseCidr(b);
  return left.success && right.success ? cidrEquals(left.data, right.data) : a === b;
}

function norm(ip: string | undefined): string | undefined {
  return ip === undefined ? undefined : unmapAddress(ip);
}
