import {
  combineNetfilter,
  parseIptablesSave,
  parseNftChainPolicies,
  parseNftRuleset,
  parseConntrack,
  type IptablesRuleset,
  type NodeEvidence,
  type PolicyRule,
  type RouteEntry,
  type RouteLookup,
  type RouteQuery,
} from "@flatnet/core";
import { listConntrack } from "./conntrack.ts";
import { parseJsonStream, plainKernelMessage, readInNetns, runBatch, runCommand } from "./exec.ts";
import { type IpRouteJson, pick } from "./read.ts";

// Read-only evidence of one namespace for the path tracer: one `ip -batch` for the tables and the route
// queries' arrival devices, one for the queries, and one process per netfilter tool. Nothing is ever written.

export interface GatherOptions {
  /** The name the evidence carries (node name, or the underlay's). */
  node: string;
  role?: NodeEvidence["role"];
  /** The node each port of an underlay bridge leads to (the lab knows its own wiring). */
  portNodes?: ReadonlyMap<string, string>;
}

/** Gather the evidence of `netns`, answering `queries` (`ip route get`, as each packet arrives there). */
export async function gatherEvidence(netns: string, queries: readonly RouteQuery[], options: GatherOptions): Promise<NodeEvidence> {
  const errors: string[] = [];
  const arrivals = [...new Set(queries.flatMap((q) => (q.iifOf === undefined ? [] : [q.iifOf])))];
  const tableLines = ["route show table all", "rule show", "link show", "neigh show"];
  const [first, rules6, fdb, netfilter, sysctls, conntrack] = await Promise.all([
    ipBatch(netns, [...tableLines, ...arrivals.map((a) => `route get ${a}`)]).then((batch) => batch.docs),
    runCommand("ip", ["-6", "-n", netns, "-j", "rule", "show"]),
    runCommand("bridge", ["-n", netns, "-j", "fdb", "show"]),
    readNetfilter(netns, errors),
    readSysctls(netns, errors),
    listConntrack(netns),
  ]);
  if (conntrack.exitCode !== 0) errors.push(`conntrack -L: ${conntrack.stderr.trim() || `exit ${conntrack.exitCode}`}`);
  const [routes, rules, links, neighbours, ...arrivalRoutes] = first;
  const arrivalDev = new Map(arrivals.map((a, i) => [a, (arrivalRoutes[i]?.[0] as IpRouteJson | undefined)?.dev]));

  const resolved = queries.map((q) => ({ query: q, iif: q.iif ?? (q.iifOf === undefined ? undefined : arrivalDev.get(q.iifOf)) }));
  const lines = resolved.map(({ query, iif }) => ["route get", query.dst, query.from ? `from ${query.from}` : "", iif ? `iif ${iif}` : "", query.mark !== undefined ? `mark ${query.mark}` : ""].filter(Boolean).join(" "));
  const answers = await ipBatch(netns, lines);
  const lookups: RouteLookup[] = resolved.map(({ query, iif }, i) => {
    const lookup: RouteLookup = { query };
    if (iif !== undefined && query.iif === undefined) lookup.iif = iif;
    const failure = answers.failures.get(i + 1);
    if (failure !== undefined) lookup.error = plainKernelMessage(failure);
    else lookup.route = pick((answers.docs[i] as IpRouteJson[] | undefined)?.[0] ?? {}, ["type", "dst", "gateway", "dev", "prefsrc", "table"]);
    return lookup;
  });

  const evidence: NodeEvidence = {
    node: options.node,
    role: options.role ?? "node",
    lookups,
    routes: ((routes ?? []) as IpRouteJson[]).flatMap((r) => (r.dst === undefined ? [] : [toRouteEntry(r)])),
    policyRules: [...toPolicyRules(rules ?? [], "IPv4"), ...toPolicyRules(rules6.exitCode === 0 ? (JSON.parse(rules6.stdout || "[]") as unknown[]) : [], "IPv6")],
    firewall: netfilter.rules,
    ...(conntrack.exitCode === 0 ? { conntrack: parseConntrack(conntrack.stdout) } : {}),
    policies: netfilter.policies,
    neighbours: ((neighbours ?? []) as { dst?: string; lladdr?: string; dev?: string; state?: string[] }[]).flatMap((n) =>
      n.dst === undefined || n.dev === undefined ? [] : [{ ip: n.dst, dev: n.dev, state: n.state ?? [], ...(n.lladdr === undefined ? {} : { mac: n.lladdr }) }],
    ),
    fdb: fdb.exitCode === 0
      ? (JSON.parse(fdb.stdout || "[]") as { mac?: string; ifname?: string; dst?: string; master?: string; state?: string }[]).flatMap((f) =>
          f.mac === undefined || f.ifname === undefined ? [] : [{ mac: f.mac, dev: f.ifname, ...pick(f, ["dst", "master", "state"]) }],
        )
      : [],
    links: ((links ?? []) as { ifname?: string; operstate?: string; flags?: string[]; mtu?: number; address?: string; master?: string; linkinfo?: { info_kind?: string; info_slave_data?: { isolated?: boolean } } }[]).flatMap((l) => {
      if (l.ifname === undefined) return [];
      const node = options.portNodes?.get(l.ifname);
      return [{
        name: l.ifname,
        state: l.operstate ?? "UNKNOWN",
        mtu: l.mtu ?? 0,
        ...(l.flags === undefined ? {} : { flags: l.flags }),
        ...(l.address === undefined ? {} : { mac: l.address }),
        ...(l.master === undefined ? {} : { master: l.master }),
        ...(l.linkinfo?.info_kind === undefined ? {} : { kind: l.linkinfo.info_kind }),
        ...(l.linkinfo?.info_slave_data?.isolated === true ? { isolated: true } : {}),
        ...(node === undefined ? {} : { node }),
      }];
    }),
    sysctls,
    errors,
  };
  if (answers.docs.some((doc, i) => doc === undefined && !answers.failures.has(i + 1))) errors.push("ip route get answered fewer routes than asked");
  return evidence;
}

/** `ip -json -details -force -batch`: one parsed document per line (undefined for a refused or unanswered line), refusals by line. */
async function ipBatch(netns: string, lines: readonly string[]): Promise<{ docs: (unknown[] | undefined)[]; failures: Map<number, string> }> {
  if (lines.length === 0) return { docs: [], failures: new Map() };
  const result = await runBatch("ip", netns, lines, { json: true, details: true, force: true });
  const values = parseJsonStream(result.stdout);
  const failures = new Map(result.failures.map((f) => [f.line, f.message]));
  let next = 0;
  return { docs: lines.map((_, i) => (failures.has(i + 1) ? undefined : (values[next++] as unknown[] | undefined))), failures };
}

async function readNetfilter(netns: string, errors: string[]): Promise<{ rules: NodeEvidence["firewall"]; policies: NodeEvidence["policies"] }> {
  const target = { name: netns };
  const [nft, ...saves] = await Promise.all([
    readInNetns(target, "nft", ["-j", "list", "ruleset"]),
    ...(["iptables-nft", "iptables-legacy"] as const).map(async (flavour) => ({ flavour, r: await readInNetns(target, `${flavour}-save`, ["-c"]) })),
  ]);
  let document: unknown = {};
  if (nft.exitCode !== 0) errors.push(`nft -j list ruleset: ${nft.stderr.trim() || `exit ${nft.exitCode}`}`);
  else if (nft.stdout.trim() !== "") document = JSON.parse(nft.stdout);
  const iptables: IptablesRuleset[] = [];
  for (const { flavour, r } of saves) {
    if (r.exitCode !== 0) errors.push(`${flavour}-save: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    else iptables.push(parseIptablesSave(r.stdout, flavour));
  }
  return combineNetfilter({ rules: parseNftRuleset(document), policies: parseNftChainPolicies(document) }, iptables);
}

// One process for every sysctl the tracer reads (rp_filter and forwarding of each device included).
const SYSCTL_PATTERN = "^net\\.ipv4\\.ip_forward$|^net\\.ipv6\\.conf\\.all\\.forwarding$|^net\\.ipv4\\.conf\\..*\\.(rp_filter|forwarding)$|^net\\.bridge\\.bridge-nf-call-iptables$|^net\\.netfilter\\.nf_conntrack_(udp|tcp)_timeout";

async function readSysctls(netns: string, errors: string[]): Promise<NodeEvidence["sysctls"]> {
  const out: NodeEvidence["sysctls"] = { rpFilter: {} };
  const result = await readInNetns({ name: netns }, "sysctl", ["-a", "-r", SYSCTL_PATTERN]);
  if (result.exitCode !== 0 && result.stdout === "") {
    errors.push(`sysctl: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
    return out;
  }
  for (const line of result.stdout.split("\n")) {
    const match = /^(\S+)\s*=\s*(\d+)/.exec(line);
    if (match === null) continue;
    const [, key, value] = match as unknown as [string, string, string];
    const rp = /^net\.ipv4\.conf\.(.+)\.rp_filter$/.exec(key);
    const fwd = /^net\.ipv4\.conf\.(.+)\.forwarding$/.exec(key);
    if (rp !== null) out.rpFilter[rp[1] as string] = Number(value);
    else if (fwd !== null) (out.deviceForwarding ??= {})[fwd[1] as string] = Number(value);
    else if (key === "net.ipv4.ip_forward") out.ipForward = Number(value);
    else if (key === "net.ipv6.conf.all.forwarding") out.ip6Forward = Number(value);
    else if (key === "net.bridge.bridge-nf-call-iptables") out.bridgeNfCallIptables = Number(value);
    else if (key.startsWith("net.netfilter.")) (out.conntrackTimeouts ??= {})[key.slice("net.netfilter.".length)] = Number(value);
  }
  return out;
}

function toRouteEntry(r: IpRouteJson): RouteEntry {
  const v6 = (r.gateway ?? r.prefsrc ?? "").includes(":");
  const dst = r.dst === "default" ? (v6 ? "::/0" : "0.0.0.0/0") : (r.dst as string);
  return { dst, ...pick(r, ["type", "gateway", "dev", "protocol", "table", "metric", "flags"]) };
}

function toPolicyRules(rules: unknown[], family: "IPv4" | "IPv6"): PolicyRule[] {
  return (rules as { priority?: number; src?: string; srclen?: number; dst?: string; dstlen?: number; iif?: string; fwmark?: string; table?: string; action?: string; not?: null | boolean }[]).flatMap((r) => {
    if (r.priority === undefined) return [];
    const rule: PolicyRule = { priority: r.priority, family };
    if (r.src !== undefined && r.src !== "all") rule.src = r.srclen === undefined ? r.src : `${r.src}/${r.srclen}`;
    if (r.dst !== undefined && r.dst !== "all") rule.dst = r.dstlen === undefined ? r.dst : `${r.dst}/${r.dstlen}`;
    if (r.iif !== undefined) rule.iif = r.iif;
    if (r.fwmark !== undefined) rule.fwmark = String(r.fwmark);
    if (r.table !== undefined) rule.table = r.table;
    if (r.action !== undefined) rule.action = r.action;
    if (r.not !== undefined) rule.not = true;
    return [rule];
  });
}
