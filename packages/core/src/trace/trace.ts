import { asHostCidr } from "../cidr/cidr.ts";
import { bridgeGateway, HOST_VETH_PREFIX, POD_BRIDGE } from "../routes/bridge.ts";
import { FLATNET_ROUTE_PROTOCOL } from "../routes/types.ts";
import { cidrIncludes, probeAddressFamily, unmapAddress } from "../probe/address.ts";
import { diagnosePair, ruleLocation, type NodeProbeState } from "../probe/diagnose.ts";
import { ruleMatches, type ChainPolicy } from "../probe/firewall.ts";
import type { Diagnosis, PairResult, ProbeEndpoint, ProbePair, TraceHop } from "../probe/types.ts";
import { conntrackIdleSeconds, conntrackNat } from "./conntrack.ts";
import { routeQueryKey, type NodeEvidence, type PolicyRule, type RouteEntry, type RouteLookup, type RouteQuery } from "./evidence.ts";

/** What the tracer knows of the probe run besides the evidence. */
export interface TraceOptions {
  /**
   * Seconds from the start of the probe run to the gathering of the evidence: a conntrack entry idle for longer
   * belongs to an earlier flow (a repaired fault's), not to this run's. Without it no conntrack entry is named.
   */
  probeSeconds?: number;
}

/** A pair's path and its findings, most specific first (`flatnet trace --json` carries both). */
export interface PairTrace {
  pair: ProbePair;
  hops: TraceHop[];
  findings: Diagnosis[];
}

const BAD_ROUTE_TYPES = new Set(["blackhole", "unreachable", "prohibit"]);
const FLATNET_PROTOCOL = String(FLATNET_ROUTE_PROTOCOL);
// Findings that name one object (a rule, a route, an FDB entry) come before those naming a setting or a state,
// and those before symptoms another finding may cause (a next hop that does not answer, a failed lookup).
const RANK: Record<string, number> = {
  "drop-rule": 0, "snat-rule": 0, "dnat-rule": 0, "blackhole-route": 0, "policy-rule": 0, "foreign-route": 0, "wrong-fdb": 0, "missing-fdb": 0, "pod-port-detached": 0, "bridge-port-isolated": 0, "pod-route-missing": 0, "stale-neighbour": 0, "stale-vtep-mac": 0,
  "responder-down": 0, "agent-unreachable": 0,
  "forwarding-disabled": 1, "conntrack-nat": 1, "rp-filter": 1, "chain-policy-drop": 1, "link-down": 1, "mtu-below-pod-mtu": 1,
  "neighbour-failed": 2, "route-lookup-failed": 3,
};

interface HopPlan {
  node: string;
  role: TraceHop["role"];
  direction: TraceHop["direction"];
  packet: { src: string; dst: string };
  query: RouteQuery;
  /** The packet is forwarded here (not sent or delivered by this kernel's own sockets). */
  forwarded: boolean;
  /** The next node and its node IP when this hop sends the packet across the underlay. */
  peer?: { node: string; ip: string | undefined };
}

/**
 * The key of the route queries asked of a router between L2 segments (the lab's `auto` router): the nodes'
 * underlay packets (node IP to node IP) as they arrive there. Not a node name (`*` is no DNS label character).
 */
export const ROUTER_QUERIES = "*router";

/** The underlay packets of a cross-node pair (node IP to node IP, forward then reply), as a router would see them. */
function planUnderlayPackets(pair: ProbePair, nodeIps: ReadonlyMap<string, readonly string[]>): { direction: TraceHop["direction"]; packet: { src: string; dst: string }; query: RouteQuery }[] {
  if (pair.path !== "cross-node") return [];
  const a = nodeIpOf(nodeIps, pair.src.node, pair.family);
  const b = nodeIpOf(nodeIps, pair.dst.node, pair.family);
  if (a === undefined || b === undefined) return [];
  return [
    { direction: "forward", packet: { src: a, dst: b }, query: { dst: b, from: a, iifOf: a } },
    { direction: "reply", packet: { src: b, dst: a }, query: { dst: a, from: b, iifOf: b } },
  ];
}

/**
 * The key of the route queries asked in a pod's own namespace (only the lab reads it). Not a node name (`*` is no
 * DNS label character); the pod's evidence is keyed the same way.
 */
export function podQueriesKey(pod: Pick<ProbeEndpoint, "pod" | "namespace">): string {
  return `*pod ${pod.namespace === undefined ? "" : `${pod.namespace}/`}${pod.pod}`;
}

interface PodLookupPlan {
  pod: ProbeEndpoint;
  packet: { src: string; dst: string };
  query: RouteQuery;
}

/** The route lookups a pair's pods make in their own namespaces: the source pod's request, the destination pod's reply. */
function planPodLookups(pair: ProbePair): PodLookupPlan[] {
  const s = unmapAddress(pair.src.ip);
  const d = unmapAddress(pair.dst.ip);
  return [
    ...(pair.src.kind === "node" ? [] : [{ pod: pair.src, packet: { src: s, dst: d }, query: { dst: d, from: s } }]),
    ...(pair.dst.kind === "node" ? [] : [{ pod: pair.dst, packet: { src: d, dst: s }, query: { dst: s, from: d } }]),
  ];
}

function nodeIpOf(nodeIps: ReadonlyMap<string, readonly string[]>, node: string, family: "IPv4" | "IPv6"): string | undefined {
  return (nodeIps.get(node) ?? []).map(unmapAddress).find((ip) => probeAddressFamily(ip) === family);
}

/** The hops of a pair in order (forward then reply), each with the route query that kernel should answer. */
function planHops(pair: ProbePair, nodeIps: ReadonlyMap<string, readonly string[]>): HopPlan[] {
  const s = unmapAddress(pair.src.ip);
  const d = unmapAddress(pair.dst.ip);
  const srcPod = pair.src.kind !== "node";
  const dstPod = pair.dst.kind !== "node";
  const nodeIp = (node: string): string | undefined => nodeIpOf(nodeIps, node, pair.family);
  const ask = (dst: string, from: string, iifOf: string | undefined): RouteQuery => (iifOf === undefined ? { dst, from } : { dst, from, iifOf });
  const a = pair.src.node;
  const b = pair.dst.node;
  if (pair.path === "same-node") {
    return [
      { node: a, role: "src-node", direction: "forward", packet: { src: s, dst: d }, query: ask(d, s, srcPod ? s : undefined), forwarded: srcPod && dstPod },
      { node: a, role: "src-node", direction: "reply", packet: { src: d, dst: s }, query: ask(s, d, dstPod ? d : undefined), forwarded: srcPod && dstPod },
    ];
  }
  const viaA = nodeIp(a);
  const viaB = nodeIp(b);
  return [
    { node: a, role: "src-node", direction: "forward", packet: { src: s, dst: d }, query: ask(d, s, srcPod ? s : undefined), forwarded: srcPod, peer: { node: b, ip: viaB } },
    { node: b, role: "dst-node", direction: "forward", packet: { src: s, dst: d }, query: ask(d, s, viaA), forwarded: dstPod },
    { node: b, role: "dst-node", direction: "reply", packet: { src: d, dst: s }, query: ask(s, d, dstPod ? d : undefined), forwarded: dstPod, peer: { node: a, ip: viaA } },
    { node: a, role: "src-node", direction: "reply", packet: { src: d, dst: s }, query: ask(s, d, viaB), forwarded: srcPod },
  ];
}

/**
 * The route queries each node must answer to trace these pairs, deduplicated: evidence is gathered once per node,
 * whatever the number of pairs.
 * @example planTraceQueries([pair], nodeIps).get("node-2") // [{ dst: "10.244.2.2", from: "10.244.1.2", iifOf: "172.31.0.11" }, ...]
 */
export function planTraceQueries(pairs: readonly ProbePair[], nodeIps: ReadonlyMap<string, readonly string[]>): Map<string, RouteQuery[]> {
  const out = new Map<string, Map<string, RouteQuery>>();
  for (const pair of pairs) {
    for (const hop of planHops(pair, nodeIps)) {
      const queries = out.get(hop.node) ?? new Map<string, RouteQuery>();
      queries.set(routeQueryKey(hop.query), hop.query);
      out.set(hop.node, queries);
    }
    for (const hop of planUnderlayPackets(pair, nodeIps)) {
      const queries = out.get(ROUTER_QUERIES) ?? new Map<string, RouteQuery>();
      queries.set(routeQueryKey(hop.query), hop.query);
      out.set(ROUTER_QUERIES, queries);
    }
    for (const lookup of planPodLookups(pair)) {
      const key = podQueriesKey(lookup.pod);
      const queries = out.get(key) ?? new Map<string, RouteQuery>();
      queries.set(routeQueryKey(lookup.query), lookup.query);
      out.set(key, queries);
    }
  }
  return new Map([...out].map(([node, queries]) => [node, [...queries.values()]]));
}

/**
 * Walk a pair's path through the gathered evidence and name what breaks it: each hop's forwarding decision
 * (blackhole/unreachable/prohibit routes, foreign more-specific routes, policy rules, forwarding off, rp_filter),
 * link state, failed neighbours, chain policies, the underlay bridge (port MTU and state, FDB), and what the probe
 * itself showed (a refused connection). Pure: evidence in, findings out, most specific first.
 * @example tracePair(result, states, evidence, nodeIps).findings[0] // { code: "blackhole-route", node: "node-1", fix: "ip route del blackhole 10.244.3.3/32", ... }
 */
export function tracePair(
  result: PairResult,
  states: ReadonlyMap<string, NodeProbeState>,
  evidence: ReadonlyMap<string, NodeEvidence>,
  nodeIps: ReadonlyMap<string, readonly string[]>,
  options: TraceOptions = {},
): PairTrace {
  const { pair } = result;
  const findings: Diagnosis[] = [];
  const hops: TraceHop[] = [];
  const dataPath = result.problems.some((p) => p === "tcp-unreachable" || p === "udp-unreachable" || p === "udp-loss");
  const mtuProblem = result.problems.some((p) => p === "mtu-tcp-blackhole" || p === "mtu-udp-blackhole");
  const add = (hop: TraceHop | undefined, finding: Diagnosis): void => {
    // One object breaks both directions: name it once (same code, place and fix).
    if (findings.some((f) => f.code === finding.code && f.node === finding.node && (f.message === finding.message || (f.fix !== undefined && f.fix === finding.fix)))) return;
    findings.push(finding);
    if (hop !== undefined) {
      hop.findings.push(finding.code);
      hop.status = "broken";
    }
  };

  const plans = planHops(pair, nodeIps);
  const underlays = [...evidence.values()].filter((e) => e.role === "underlay");
  const routers = [...evidence.values()].filter((e) => e.role === "router");
  const underlayPackets = planUnderlayPackets(pair, nodeIps);
  for (const [index, plan] of plans.entries()) {
    const e = evidence.get(plan.node);
    const lookup = e?.lookups.find((l) => routeQueryKey(l.query) === routeQueryKey(plan.query));
    const hop: TraceHop = {
      node: plan.node,
      role: plan.role,
      direction: plan.direction,
      packet: plan.packet,
      query: lookup?.iif === undefined ? plan.query : { ...plan.query, iif: lookup.iif },
      decision: lookup === undefined ? (e === undefined ? "no evidence (agent did not answer)" : "not asked") : describeLookup(lookup),
      status: lookup === undefined ? "unknown" : "ok",
      findings: [],
    };
    hops.push(hop);
    if (e !== undefined && lookup !== undefined) {
      for (const f of checkHop(e, plan, lookup, pair.family, dataPath || mtuProblem)) add(hop, f);
      if (dataPath || mtuProblem) for (const f of checkVxlan(e, plan, lookup, evidence)) add(hop, f);
      if (dataPath) for (const f of checkPolicies(e, plan, pair)) add(hop, f);
      if (mtuProblem) for (const f of checkHopMtu(e, lookup, states)) add(hop, f);
      if (dataPath) for (const f of checkPodBridge(e, plan, lookup)) add(hop, f);
      if (plan.direction === "forward" && options.probeSeconds !== undefined) for (const f of checkConntrack(e, plan, pair, options.probeSeconds)) add(hop, f);
    }
    // The underlay sits between the source node's forward hop and the destination node's (and back).
    const crossing = pair.path === "cross-node" && (index === 0 || index === 2);
    if (crossing) {
      const outer = underlayPackets.find((p) => p.direction === plan.direction);
      for (const u of underlays) {
        const uhop: TraceHop = { node: u.node, role: "underlay", direction: plan.direction, packet: plan.packet, decision: "bridged", status: "ok", findings: [] };
        hops.push(uhop);
        for (const f of checkUnderlay(u, pair, states, mtuProblem, dataPath || mtuProblem)) add(uhop, f);
        // A VXLAN frame carries the node IPs outside: that is what a bridge rule matches.
        const encapsulated = (states.get(pair.src.node)?.encapOverhead ?? 0) > 0 && outer !== undefined;
        if (dataPath) for (const f of checkBridgeFirewall(u, pair, encapsulated ? outer.packet : plan.packet)) add(uhop, f);
      }
      for (const r of routers) {
        if (outer === undefined || !routedBetweenSegments(r, outer.packet)) continue;
        const rplan: HopPlan = { node: r.node, role: "underlay", direction: plan.direction, packet: outer.packet, query: outer.query, forwarded: true };
        const rlookup = r.lookups.find((l) => routeQueryKey(l.query) === routeQueryKey(outer.query));
        const rhop: TraceHop = {
          node: r.node,
          role: "underlay",
          direction: plan.direction,
          packet: outer.packet,
          query: rlookup?.iif === undefined ? outer.query : { ...outer.query, iif: rlookup.iif },
          decision: rlookup === undefined ? "not asked" : `routed: ${describeLookup(rlookup)}`,
          status: rlookup === undefined ? "unknown" : "ok",
          findings: [],
        };
        hops.push(rhop);
        if (rlookup === undefined) continue;
        for (const f of checkHop(r, rplan, rlookup, pair.family, dataPath || mtuProblem)) add(rhop, f);
        if (dataPath) for (const f of checkPolicies(r, rplan, pair)) add(rhop, f);
      }
    }
  }

  if (dataPath) for (const lookup of planPodLookups(pair)) for (const f of checkPodRoute(evidence.get(podQueriesKey(lookup.pod)), lookup, pair.family, states)) add(undefined, f);

  // A refused connection crossed the whole path: what is missing is the process that should answer, unless a
  // DNAT rule on the way sent the packet to another address or port than the responder's.
  if (dataPath && /ECONNREFUSED/.test(result.error ?? "")) {
    for (const node of new Set([pair.src.node, pair.dst.node])) {
      for (const rule of evidence.get(node)?.firewall ?? []) {
        if (rule.action !== "dnat" || !ruleMatches(rule, pair.src.ip, pair.dst.ip)) continue;
        add(undefined, {
          code: "dnat-rule",
          node,
          message: `${node} rewrites the destination of ${unmapAddress(pair.src.ip)} -> ${unmapAddress(pair.dst.ip)}:${pair.dst.port}${rule.to ? ` to ${rule.to}` : ""} (${ruleLocation(rule)}): the connection is refused there, not by ${pair.dst.pod}`,
          ...(rule.fix === undefined ? {} : { fix: rule.fix }),
          details: { rule },
        });
      }
    }
  }
  if (dataPath && /ECONNREFUSED/.test(result.error ?? "") && !findings.some((f) => f.code === "dnat-rule")) {
    const where = `${unmapAddress(pair.dst.ip)}:${pair.dst.port}`;
    const agentError = states.get(pair.dst.node)?.error;
    add(undefined, pair.dst.kind === "node"
      ? {
          code: "agent-unreachable",
          node: pair.dst.node,
          message: `${pair.dst.node}'s agent is not running: the node responder it hosts refused the connection on ${where}${agentError ? ` (${agentError})` : ""}`,
          fix: `restart the flatnet agent of ${pair.dst.node}`,
        }
      : {
          code: "responder-down",
          node: pair.dst.node,
          message: `${pair.dst.pod} (${unmapAddress(pair.dst.ip)}) refused the connection on port ${pair.dst.port}: the path works, but its probe responder is not running`,
          fix: `restart the probe responder of ${pair.dst.pod}`,
        });
  }
  findings.sort((x, y) => (RANK[x.code] ?? 1) - (RANK[y.code] ?? 1));
  return { pair, hops, findings };
}

/**
 * Explain a failed or inconclusive pair: the tracer's findings (most specific first), then those of
 * `diagnosePair` that add something; `unexplained` only when neither found a cause. `hops` when traced.
 * @example explainPair(result, states, evidence, nodeIps).diagnosis // [{ code: "snat-rule", node: "node-2", fix: "iptables-nft -t nat -D POSTROUTING 1", ... }]
 */
export function explainPair(...args: Parameters<typeof tracePair>): { diagnosis: Diagnosis[]; hops?: TraceHop[] } {
  const [result, states, evidence, nodeIps, options = {}] = args;
  if (result.verdict !== "failed" || evidence.size === 0) return { diagnosis: diagnosePair(result, states) };
  // The evidence's netfilter is the whole of it (nft and both iptables flavours): diagnosis reads that.
  const withRules = new Map([...states].map(([name, state]) => {
    const rules = evidence.get(name)?.firewall;
    return [name, rules === undefined || !state.reachable ? state : { ...state, firewall: rules }] as const;
  }));
  const base = diagnosePair(result, withRules);
  const traced = tracePair(result, withRules, evidence, nodeIps, options);
  // diagnosePair knows flatnet's own routes: its missing/wrong route says more than a failed lookup at that node.
  const routeKnown = new Set(base.filter((d) => d.code === "missing-route" || d.code === "wrong-route").map((d) => d.node));
  // A conntrack entry shows what a rule did: the rule (diagnosePair's snat-rule) is named before its trace.
  const out = traced.findings.filter((d) => !(d.code === "route-lookup-failed" && routeKnown.has(d.node)) && d.code !== "conntrack-nat");
  for (const d of base) if (d.code !== "unexplained" && !out.some((o) => o.code === d.code && o.node === d.node)) out.push(d);
  out.push(...traced.findings.filter((d) => d.code === "conntrack-nat"));
  return { diagnosis: out.length > 0 ? out : base, hops: traced.hops };
}

function describeLookup(lookup: RouteLookup): string {
  if (lookup.error !== undefined) return `error: ${lookup.error}`;
  const r = lookup.route ?? {};
  if (r.type !== undefined && r.type !== "unicast") return `${r.type}${r.dev ? ` dev ${r.dev}` : ""}`;
  return [r.gateway ? `via ${r.gateway}` : "", r.dev ? `dev ${r.dev}` : "", r.table && r.table !== "main" ? `table ${r.table}` : ""].filter(Boolean).join(" ") || "delivered";
}

/** The forwarding decision at one hop, its out device and next hop. */
function checkHop(e: NodeEvidence, plan: HopPlan, lookup: RouteLookup, family: "IPv4" | "IPv6", failing: boolean): Diagnosis[] {
  if (!failing) return [];
  const out: Diagnosis[] = [];
  const { src, dst } = plan.packet;
  const flow = `${src} -> ${dst}`;
  const iif = lookup.iif ?? lookup.query.iif;
  const chosen = chooseRoute(e, { dst, from: src, iif, mark: lookup.query.mark }, family);
  const failed = lookup.error !== undefined || BAD_ROUTE_TYPES.has(lookup.route?.type ?? "");
  if (failed) {
    const forward = family === "IPv4" ? e.sysctls.ipForward : e.sysctls.ip6Forward;
    const key = family === "IPv4" ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding";
    if (plan.forwarded && forward === 0) {
      out.push({ code: "forwarding-disabled", node: e.node, message: `${e.node}: ${key} is 0, so ${e.node} does not forward ${flow}`, fix: `sysctl -w ${key}=1`, details: { sysctl: key } });
    } else if (plan.forwarded && family === "IPv4" && iif !== undefined && e.sysctls.deviceForwarding?.[iif] === 0) {
      // ip_forward is on, but the arrival device's own switch is off: the kernel refuses to forward what it receives.
      const device = `net.ipv4.conf.${iif}.forwarding`;
      out.push({ code: "forwarding-disabled", node: e.node, message: `${e.node}: ${device} is 0, so ${e.node} does not forward ${flow} arriving on ${iif}`, fix: `sysctl -w ${device}=1`, details: { sysctl: device } });
    }
    if (chosen?.rule !== undefined && chosen.rule.action !== undefined && BAD_ROUTE_TYPES.has(chosen.rule.action)) {
      const r = chosen.rule;
      const text = [r.not ? "not" : "", r.src ? `from ${r.src}` : "", r.dst ? `to ${r.dst}` : "", r.iif ? `iif ${r.iif}` : "", r.fwmark ? `fwmark ${r.fwmark}` : "", r.action].filter(Boolean).join(" ");
      out.push({ code: "policy-rule", node: e.node, message: `${e.node}: ip rule ${r.priority} (\`${text}\`) ${verb(r.action)} ${flow}`, fix: `ip rule del priority ${r.priority}`, details: { rule: r } });
    } else if (chosen?.route !== undefined && BAD_ROUTE_TYPES.has(chosen.route.type ?? "")) {
      const r = chosen.route;
      const table = (r.table ?? "main") === "main" ? "" : ` table ${r.table}`;
      out.push({ code: "blackhole-route", node: e.node, message: `${e.node}: route \`${r.type} ${r.dst}${table}\` ${verb(r.type)} ${flow}`, fix: `ip route del ${r.type} ${r.dst}${table}`, details: { route: r } });
    } else if (plan.forwarded && iif !== undefined && /cross-device|Invalid argument/i.test(lookup.error ?? "") && rpFilter(e, iif) > 0) {
      const back = chooseRoute(e, { dst: src }, family)?.route;
      const level = rpFilter(e, iif);
      out.push({
        code: "rp-filter",
        node: e.node,
        message: `${e.node}: rp_filter=${level} on ${iif} drops ${flow}: the route back to ${src} leaves by ${back?.dev ?? "no device"}${back?.gateway ? ` via ${back.gateway}` : ""}, not ${iif}`,
        fix: `sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.${iif}.rp_filter=2`,
        details: { iif, rpFilter: level, reverseRoute: back },
      });
    } else if (out.length === 0) {
      out.push({ code: "route-lookup-failed", node: e.node, message: `${e.node}: \`ip route get ${queryText(lookup)}\` answers ${lookup.error ?? lookup.route?.type}` });
    }
    return out;
  }
  const route = lookup.route ?? {};
  // A route someone else added, more specific than flatnet's own for the same destination.
  const ours = e.routes.filter((r) => r.protocol === FLATNET_PROTOCOL && (r.table ?? "main") === (chosen?.table ?? "main") && covers(r.dst, dst)).sort(byPrefix)[0];
  const winner = chosen?.route;
  if (winner !== undefined && ours !== undefined && winner !== ours && winner.protocol !== FLATNET_PROTOCOL && prefixOf(winner.dst) > prefixOf(ours.dst) &&
    (winner.gateway !== ours.gateway || winner.dev !== ours.dev)) {
    const text = `${winner.dst}${winner.gateway ? ` via ${winner.gateway}` : ""}${winner.dev ? ` dev ${winner.dev}` : ""}`;
    out.push({
      code: "foreign-route",
      node: e.node,
      message: `${e.node}: route \`${text}\` (proto ${winner.protocol ?? "boot"}) is more specific than flatnet's ${ours.dst} via ${ours.gateway ?? "-"} dev ${ours.dev ?? "-"} and takes ${flow}`,
      fix: `ip route del ${text}`,
      details: { route: winner, flatnet: ours },
    });
  }
  const dev = route.dev;
  const link = dev === undefined ? undefined : e.links.find((l) => l.name === dev);
  if (link !== undefined && dev !== "lo" && !["UP", "UNKNOWN"].includes(link.state)) {
    const adminUp = link.flags?.includes("UP") ?? link.state !== "DOWN";
    out.push({
      code: "link-down",
      node: e.node,
      message: adminUp
        ? `${e.node}: ${dev} has no carrier (state ${link.state}): the other end of the link is down, and ${flow} leaves by it`
        : `${e.node}: ${dev} is down, and ${flow} leaves by it`,
      fix: adminUp ? `bring up the other end of ${dev} (its underlay port or peer)` : `ip link set ${dev} up`,
      details: { link },
    });
  }
  const next = route.gateway ?? dst;
  const neighbour = dev === undefined ? undefined : e.neighbours.find((n) => n.dev === dev && sameIp(n.ip, next));
  if (neighbour !== undefined && neighbour.state.some((s) => s === "FAILED" || s === "INCOMPLETE")) {
    out.push({
      code: "neighbour-failed",
      node: e.node,
      message: `${e.node}: neighbour ${next} on ${dev} is ${neighbour.state.join(",")}: nothing answers ARP/ND for the next hop of ${flow}`,
      fix: `check that ${next} exists on ${dev}'s link, or remove the route that uses it`,
      details: { neighbour },
    });
  }
  return out;
}

/**
 * The probe flow's own conntrack entries at this hop (original tuple exactly the probe's: protocol, source,
 * destination, destination port; last seen during this probe run): a NAT that already happened shows there.
 */
function checkConntrack(e: NodeEvidence, plan: HopPlan, pair: ProbePair, probeSeconds: number): Diagnosis[] {
  const { src, dst } = plan.packet;
  // The most recently used of the flow's entries with a NAT: one finding per hop, however many probes ran.
  const found = (e.conntrack ?? [])
    .filter((c) => (c.protocol === "tcp" || c.protocol === "udp") && c.dport === pair.dst.port && sameIp(c.src, src) && sameIp(c.dst, dst))
    .map((c) => ({ c, idle: conntrackIdleSeconds(c, e.sysctls.conntrackTimeouts ?? {}) }))
    .filter((x): x is { c: typeof x.c; idle: number } => x.idle !== undefined && x.idle <= Math.ceil(probeSeconds) && Object.keys(conntrackNat(x.c)).length > 0)
    .sort((a, b) => a.idle - b.idle)[0];
  if (found === undefined) return [];
  const { c: entry, idle } = found;
  const { snat, dnat } = conntrackNat(entry);
  const text = `${entry.protocol} src=${entry.src} dst=${entry.dst} sport=${entry.sport} dport=${entry.dport} reply src=${entry.replySrc} dst=${entry.replyDst}`;
  const what = [snat === undefined ? "" : `${src} was rewritten to ${snat} (SNAT)`, dnat === undefined ? "" : `${dst} was rewritten to ${dnat} (DNAT)`].filter(Boolean).join(" and ");
  return [{
    code: "conntrack-nat",
    node: e.node,
    message: `${e.node}: conntrack entry \`${text}\` of this probe's flow shows ${what}`,
    fix: `conntrack -D -p ${entry.protocol} -s ${entry.src} -d ${entry.dst} --dport ${entry.dport}, once the rule that made it is gone`,
    details: { conntrack: entry, idleSeconds: idle },
  }];
}

/** Base-chain policies that drop the pair's packets at this hop when no rule of that chain accepts them. */
function checkPolicies(e: NodeEvidence, plan: HopPlan, pair: ProbePair): Diagnosis[] {
  const { src, dst } = plan.packet;
  const bridged = pair.path === "same-node";
  const hook = plan.forwarded ? "forward" : plan.role === "src-node" && plan.direction === "forward" ? "output" : "input";
  if (bridged && plan.forwarded && e.sysctls.bridgeNfCallIptables !== 1) return []; // bridged frames skip the ip hooks
  const out: Diagnosis[] = [];
  for (const policy of e.policies) {
    if (policy.hook !== hook || !familyFits(policy, src)) continue;
    const accepted = e.firewall.some((r) => r.action === "accept" && r.table === policy.table && r.chain === policy.chain && r.source === policy.source && ruleMatches(r, src, dst));
    if (accepted) continue;
    const counted = policy.packets !== undefined ? ` (${policy.packets} packets so far)` : "";
    const via = bridged ? `; bridged between two pods of ${e.node}, the frames pass it because bridge-nf-call-iptables=1` : "";
    out.push({
      code: "chain-policy-drop",
      node: e.node,
      message: `${e.node}: ${policy.source} ${policy.table} ${policy.chain} policy DROP${counted} drops ${src} -> ${dst}: no rule of the chain accepts it${via}`,
      fix: policy.fix,
      details: { policy },
    });
  }
  return out;
}

/** The underlay bridge between the two nodes: its ports' state and MTU, and where its FDB sends their MACs. */
function checkUnderlay(u: NodeEvidence, pair: ProbePair, states: ReadonlyMap<string, NodeProbeState>, mtuProblem: boolean, failing: boolean): Diagnosis[] {
  if (!failing) return [];
  const out: Diagnosis[] = [];
  const ends = [pair.src.node, pair.dst.node];
  const ports = u.links.filter((l) => l.master !== undefined && (l.node === undefined || ends.includes(l.node)));
  for (const port of ports) {
    const to = port.node === undefined ? "" : ` (to ${port.node})`;
    if (!["UP", "UNKNOWN"].includes(port.state)) {
      out.push({ code: "link-down", node: u.node, message: `${u.node}: bridge port ${port.name}${to} is ${port.state}`, fix: `ip link set ${port.name} up`, details: { link: port } });
    }
    const state = port.node === undefined ? undefined : states.get(port.node);
    const podMtu = state?.podMtu ?? [...states.values()].find((s) => s.podMtu !== undefined)?.podMtu;
    const need = podMtu === undefined ? undefined : podMtu + (state?.encapOverhead ?? 0);
    if (mtuProblem && need !== undefined && port.mtu < need) {
      out.push({
        code: "mtu-below-pod-mtu",
        node: u.node,
        message: `${u.node}: bridge port ${port.name}${to} has MTU ${port.mtu}, below the ${need} the pod MTU ${podMtu} needs: larger frames are dropped at L2, without ICMP`,
        fix: `ip link set ${port.name} mtu ${need}`,
        details: { link: port, need },
      });
    }
  }
  for (const node of ends) {
    const mac = states.get(node)?.underlayMac?.toLowerCase();
    const home = u.links.find((l) => l.node === node);
    if (mac === undefined || home === undefined) continue;
    for (const entry of u.fdb.filter((f) => f.mac.toLowerCase() === mac && f.dev !== home.name && u.links.some((l) => l.name === f.dev && l.master !== undefined))) {
      const other = u.links.find((l) => l.name === entry.dev)?.node;
      out.push({
        code: "wrong-fdb",
        node: u.node,
        message: `${u.node}: bridge FDB sends ${mac} (${node}'s underlay MAC) to port ${entry.dev}${other ? ` (to ${other})` : ""}, but ${node} is on ${home.name}`,
        fix: `bridge fdb del ${entry.mac} dev ${entry.dev} master`,
        details: { entry },
      });
    }
  }
  return out;
}

/**
 * A hop that delivers to a pod through the pod bridge: a pod veth that is no port of the bridge, two isolated ports
 * (the bridge forwards nothing between them), or the pod's neighbour entry pinned to a MAC no bridge port has.
 */
function checkPodBridge(e: NodeEvidence, plan: HopPlan, lookup: RouteLookup): Diagnosis[] {
  if (lookup.route?.dev !== POD_BRIDGE) return [];
  const out: Diagnosis[] = [];
  const { src, dst } = plan.packet;
  const flow = `${src} -> ${dst}`;
  const neighbour = e.neighbours.find((n) => n.dev === POD_BRIDGE && sameIp(n.ip, dst));
  const onBridge = (mac: string | undefined): boolean => mac !== undefined && e.fdb.some((f) => f.mac.toLowerCase() === mac.toLowerCase() && (f.master === POD_BRIDGE || f.dev === POD_BRIDGE));
  // No answer to ARP, or an answer whose MAC no port of the bridge holds any more (a detached port's entries go with it).
  const unanswered = neighbour === undefined || neighbour.state.some((s) => s === "FAILED" || s === "INCOMPLETE") || !onBridge(neighbour.mac);
  const vethsOff = e.links.filter((l) => l.name.startsWith(HOST_VETH_PREFIX) && l.master === undefined);
  if (unanswered && vethsOff.length > 0) {
    const names = vethsOff.map((l) => l.name);
    out.push({
      code: "pod-port-detached",
      node: e.node,
      message: `${e.node}: pod veth ${names.join(", ")} is not a port of ${POD_BRIDGE} (no master), so the pod behind it is cut off: nothing answers ARP for ${dst} (${flow})`,
      fix: names.map((n) => `ip link set ${n} master ${POD_BRIDGE}`).join("; "),
      details: { links: vethsOff },
    });
  }
  const isolated = e.links.filter((l) => l.master === POD_BRIDGE && l.isolated === true);
  if (plan.query.iif === POD_BRIDGE || lookup.iif === POD_BRIDGE) {
    if (isolated.length >= 2) {
      const names = isolated.map((l) => l.name);
      out.push({
        code: "bridge-port-isolated",
        node: e.node,
        message: `${e.node}: ports ${names.join(", ")} of ${POD_BRIDGE} are isolated: the bridge forwards no frames between isolated ports, so pods behind them cannot reach each other (${flow})`,
        fix: names.map((n) => `bridge link set dev ${n} isolated off`).join("; "),
        details: { links: isolated },
      });
    }
  }
  const pinned = neighbour !== undefined && neighbour.mac !== undefined && neighbour.state.some((s) => s === "PERMANENT" || s === "NOARP");
  if (pinned && vethsOff.length === 0 && !onBridge(neighbour.mac)) {
    out.push({
      code: "stale-neighbour",
      node: e.node,
      message: `${e.node}: neighbour ${dst} on ${POD_BRIDGE} is pinned to ${neighbour.mac} (${neighbour.state.join(" ")}), a MAC no port of ${POD_BRIDGE} has: ${flow} goes nowhere`,
      fix: `ip neigh del ${dst} dev ${POD_BRIDGE}`,
      details: { neighbour },
    });
  }
  return out;
}

/**
 * A pod whose own lookup toward the other end fails with no route to choose (its default route deleted): the packet
 * never leaves the pod, so no node sees it. The fix is the default route flatnet's CNI gives a pod, via the bridge.
 */
function checkPodRoute(e: NodeEvidence | undefined, plan: PodLookupPlan, family: "IPv4" | "IPv6", states: ReadonlyMap<string, NodeProbeState>): Diagnosis[] {
  const lookup = e?.lookups.find((l) => routeQueryKey(l.query) === routeQueryKey(plan.query));
  if (e === undefined || lookup === undefined || lookup.error === undefined) return [];
  const { src, dst } = plan.packet;
  // A route that exists but refuses (blackhole, a policy rule) is no missing route.
  if (chooseRoute(e, { dst, from: src }, family) !== undefined) return [];
  const { pod, node } = plan.pod;
  const cidr = states.get(node)?.podCidrs.find((c) => familyOfCidr(c) === family && covers(c, src));
  const gateway = cidr === undefined ? undefined : bridgeGateway(cidr).split("/")[0];
  // The pod's interface: the device of its connected route (the one that remains), else its one non-loopback link.
  const dev = e.routes.find((r) => r.protocol === "kernel" && r.dev !== undefined && (r.table ?? "main") === "main" && covers(r.dst, src))?.dev
    ?? e.links.find((l) => l.name !== "lo")?.name;
  const where = e.netns === undefined ? pod : `${pod} (netns ${e.netns})`;
  const ip = `ip${e.netns === undefined ? "" : ` -n ${e.netns}`}${family === "IPv6" ? " -6" : ""}`;
  return [{
    code: "pod-route-missing",
    node,
    message: `${where} on ${node} has no route to ${dst}: \`ip route get ${queryText(lookup)}\` answers ${lookup.error}; its default route${gateway === undefined ? "" : ` via ${gateway}`} is missing, so ${src} -> ${dst} never leaves the pod`,
    ...(gateway === undefined || dev === undefined ? {} : { fix: `${ip} route add default via ${gateway} dev ${dev}` }),
    details: { pod, ...(e.netns === undefined ? {} : { netns: e.netns }), lookup },
  }];
}

/**
 * A node device the packet arrives on or leaves by with an MTU below the pod MTU: a full-size pod packet is
 * larger than the device takes (received frames over the MTU are dropped, without ICMP). The largest pod MTU of
 * the nodes: an agent derives its own from its underlay device, so a shrunken device lowers its node's figure too.
 */
function checkHopMtu(e: NodeEvidence, lookup: RouteLookup, states: ReadonlyMap<string, NodeProbeState>): Diagnosis[] {
  const mtus = [...states.values()].flatMap((s) => (s.podMtu === undefined ? [] : [s.podMtu]));
  if (mtus.length === 0) return [];
  const podMtu = Math.max(...mtus);
  const devices = [...new Set([lookup.iif ?? lookup.query.iif, lookup.route?.dev].filter((d): d is string => d !== undefined))];
  return devices.flatMap((name) => {
    const link = e.links.find((l) => l.name === name);
    if (link === undefined || link.mtu >= podMtu) return [];
    return [{
      code: "mtu-below-pod-mtu",
      node: e.node,
      message: `${e.node}: ${name} has MTU ${link.mtu}, below the pod MTU ${podMtu}: full-size pod packets through it are lost`,
      fix: `ip link set ${name} mtu ${podMtu}`,
      details: { link, need: podMtu },
    }];
  });
}

/**
 * A hop that leaves by a VXLAN device: the VTEP neighbour of the next hop must hold the peer's VTEP MAC, and the
 * device's FDB must send that MAC to the peer's node IP.
 */
function checkVxlan(e: NodeEvidence, plan: HopPlan, lookup: RouteLookup, evidence: ReadonlyMap<string, NodeEvidence>): Diagnosis[] {
  const dev = lookup.route?.dev;
  const gateway = lookup.route?.gateway;
  const link = e.links.find((l) => l.name === dev);
  if (plan.peer === undefined || dev === undefined || gateway === undefined || link?.kind !== "vxlan") return [];
  const { node: peer, ip: peerIp } = plan.peer;
  const flow = `${plan.packet.src} -> ${plan.packet.dst}`;
  const peerMac = evidence.get(peer)?.links.find((l) => l.kind === "vxlan" && l.name === dev)?.mac?.toLowerCase();
  const neighbour = e.neighbours.find((n) => n.dev === dev && sameIp(n.ip, gateway));
  const pin = (mac: string): string => `ip neigh replace ${gateway} lladdr ${mac} dev ${dev} nud permanent`;
  if (neighbour?.mac === undefined) {
    if (neighbour !== undefined) return []; // FAILED/INCOMPLETE: checkHop names it
    return [{
      code: "missing-vtep-neighbour",
      node: e.node,
      message: `${e.node}: no neighbour entry for ${peer}'s VTEP ${gateway} on ${dev}: ${flow} cannot be encapsulated`,
      ...(peerMac === undefined ? {} : { fix: pin(peerMac) }),
    }];
  }
  const mac = neighbour.mac.toLowerCase();
  if (peerMac !== undefined && mac !== peerMac) {
    // Worded as diagnosePair words it (agent down), so the two name it once.
    return [{
      code: "stale-vtep-mac",
      node: e.node,
      message: `VTEP MAC of ${peer} is stale on ${e.node}: ${gateway} -> ${mac}, ${peer}'s VXLAN device is ${peerMac}`,
      fix: pin(peerMac),
      details: { neighbour, expected: peerMac },
    }];
  }
  if (peerIp === undefined) return [];
  const entries = e.fdb.filter((f) => f.dev === dev && f.dst !== undefined && (f.mac.toLowerCase() === mac || f.mac === "00:00:00:00:00:00"));
  if (entries.length === 0) {
    return [{
      code: "missing-fdb",
      node: e.node,
      message: `${e.node}: ${dev} has no FDB entry for ${mac} (${peer}'s VTEP), so ${flow} is not sent to ${peerIp}`,
      fix: `bridge fdb append ${mac} dev ${dev} dst ${peerIp}`,
    }];
  }
  if (entries.some((f) => sameIp(f.dst as string, peerIp))) return [];
  const wrong = entries[0] as (typeof entries)[number];
  return [{
    code: "wrong-fdb",
    node: e.node,
    message: `${e.node}: FDB entry ${wrong.mac} dev ${dev} dst ${wrong.dst} sends ${flow} to ${wrong.dst}, but ${peer}'s VTEP is at ${peerIp}`,
    fix: `bridge fdb del ${wrong.mac} dev ${dev} dst ${wrong.dst}; bridge fdb append ${wrong.mac} dev ${dev} dst ${peerIp}`,
    details: { entry: wrong },
  }];
}

/** Drop rules of the underlay bridge's own netfilter (nft bridge family) that match the frames it forwards. */
function checkBridgeFirewall(u: NodeEvidence, pair: ProbePair, packet: { src: string; dst: string }): Diagnosis[] {
  return u.firewall
    .filter((r) => (r.action === "drop" || r.action === "reject") && (r.hook === undefined || r.hook === "forward" || r.hook === "prerouting") && ruleMatches(r, packet.src, packet.dst))
    .map((rule) => ({
      code: "drop-rule",
      node: u.node,
      message: `${u.node}: ${ruleLocation(rule)} ${rule.action === "drop" ? "drops" : "rejects"} ${packet.src} -> ${packet.dst} (${pair.src.node} to ${pair.dst.node}) on the bridge`,
      ...(rule.fix === undefined ? {} : { fix: rule.fix }),
      details: { rule },
    }));
}

/** A router forwards the packet when its source and destination are on two of its connected subnets. */
function routedBetweenSegments(r: NodeEvidence, packet: { src: string; dst: string }): boolean {
  const segment = (ip: string): string | undefined =>
    r.routes.find((x) => x.protocol === "kernel" && x.gateway === undefined && x.dev !== undefined && (x.type ?? "unicast") === "unicast" && (x.table ?? "main") === "main" && covers(x.dst, ip))?.dev;
  const from = segment(packet.src);
  const to = segment(packet.dst);
  return from !== undefined && to !== undefined && from !== to;
}

interface Chosen {
  rule?: PolicyRule;
  route?: RouteEntry;
  table: string;
}

/** The kernel's own choice, replayed: policy rules by priority, then the longest prefix of the table they name. */
function chooseRoute(e: NodeEvidence, q: { dst: string; from?: string | undefined; iif?: string | undefined; mark?: number | undefined }, family: "IPv4" | "IPv6"): Chosen | undefined {
  const rules = e.policyRules.length > 0 ? [...e.policyRules].sort((a, b) => a.priority - b.priority) : [{ priority: 32766, table: "main" } as PolicyRule];
  for (const rule of rules) {
    if ((rule.family !== undefined && rule.family !== family) || !ruleApplies(rule, q)) continue;
    if (rule.action !== undefined && rule.action !== "lookup") return { rule, table: "" };
    const table = rule.table ?? "main";
    const route = e.routes
      .filter((r) => (r.table ?? "main") === table && covers(r.dst, q.dst) && familyOfCidr(r.dst) === family)
      .sort(byPrefix)[0];
    if (route !== undefined) return { rule, route, table };
  }
  return undefined;
}

function ruleApplies(rule: PolicyRule, q: { dst: string; from?: string | undefined; iif?: string | undefined; mark?: number | undefined }): boolean {
  const fromOk = rule.src === undefined || rule.src === "all" || (q.from !== undefined && covers(rule.src, q.from));
  const toOk = rule.dst === undefined || rule.dst === "all" || covers(rule.dst, q.dst);
  const iifOk = rule.iif === undefined || rule.iif === q.iif;
  const markOk = rule.fwmark === undefined || (q.mark !== undefined && Number(rule.fwmark.split("/")[0]) === q.mark);
  const all = fromOk && toOk && iifOk && markOk;
  return rule.not === true ? !all : all;
}

function verb(type: string | undefined): string {
  return type === "blackhole" ? "silently drops" : type === "prohibit" ? "rejects (administratively prohibited)" : "rejects (unreachable)";
}

function rpFilter(e: NodeEvidence, iif: string): number {
  return Math.max(e.sysctls.rpFilter.all ?? 0, e.sysctls.rpFilter[iif] ?? 0);
}

function familyFits(policy: ChainPolicy, ip: string): boolean {
  if (policy.family === "ip") return probeAddressFamily(ip) === "IPv4";
  if (policy.family === "ip6") return probeAddressFamily(ip) === "IPv6";
  return policy.family === "inet" || policy.family === "bridge";
}

function queryText(lookup: RouteLookup): string {
  const q = lookup.query;
  const iif = lookup.iif ?? q.iif;
  return [q.dst, q.from ? `from ${q.from}` : "", iif ? `iif ${iif}` : "", q.mark !== undefined ? `mark ${q.mark}` : ""].filter(Boolean).join(" ");
}

function covers(cidr: string, ip: string): boolean {
  return cidrIncludes(asHostCidr(cidr), ip);
}

function prefixOf(cidr: string): number {
  return Number(asHostCidr(cidr).split("/")[1]);
}

function byPrefix(a: RouteEntry, b: RouteEntry): number {
  return prefixOf(b.dst) - prefixOf(a.dst) || (a.metric ?? 0) - (b.metric ?? 0);
}

function familyOfCidr(cidr: string): "IPv4" | "IPv6" | undefined {
  return probeAddressFamily(cidr.split("/")[0] ?? "");
}

function sameIp(a: string, b: string): boolean {
  return unmapAddress(a) === unmapAddress(b);
}
