import { asHostCidr } from "../cidr/cidr.ts";
import { cidrIncludes, probeAddressFamily } from "./address.ts";

/** An address match of a firewall rule: `ip saddr 10.244.0.0/16` or `ip daddr != 10.244.0.0/16`. */
export interface AddressMatch {
  negated: boolean;
  /** CIDRs; a single address is written as /32 or /128. */
  cidrs: string[];
}

/** One firewall rule in a form the diagnosis rules can match against a pair. */
export interface FirewallRule {
  family: string;
  table: string;
  chain: string;
  hook?: string;
  action: "drop" | "reject" | "snat" | "masquerade" | "dnat" | "accept" | "other";
  saddr?: AddressMatch;
  daddr?: AddressMatch;
  /** The rule only matches ICMP/ICMPv6 (`icmp type ...`, `meta l4proto icmp`, `ip protocol icmp`). */
  icmpOnly?: boolean;
  /** snat/dnat target address, when given. */
  to?: string;
  /** Location for a human: `ip fn-x postrouting #3` (nft) or `iptables-nft nat POSTROUTING rule 3`. */
  where: string;
  /** Who wrote it: `nft` (absent means nft too), or iptables in its nft or legacy flavour. */
  source?: "nft" | "iptables-nft" | "iptables-legacy";
  /** The rule as its own tool prints it (`-s 10.244.2.0/24 -j MASQUERADE`), when known. */
  text?: string;
  /** Input / output interface matches (`-i`, `! -o fn-br0`), when the rule has them. */
  iif?: { negated: boolean; name: string };
  oif?: { negated: boolean; name: string };
  /** Packets the rule matched so far (counters), when read. */
  packets?: number;
  /** The command that would remove the rule (offered, never run). */
  fix?: string;
}

/** A base chain's default verdict: `policy drop` (nft) or `:FORWARD DROP` (iptables). */
export interface ChainPolicy {
  source: "nft" | "iptables-nft" | "iptables-legacy";
  family: string;
  table: string;
  chain: string;
  hook?: string;
  policy: "accept" | "drop";
  packets?: number;
  fix: string;
}

/**
 * The rules of an `nft -j list ruleset` document that can affect pod traffic (drop, reject, snat,
 * masquerade, dnat), with their address matches. Unknown expressions are ignored; a malformed document
 * gives an empty list, since diagnosis must never fail on a foreign ruleset.
 */
export function parseNftRuleset(document: unknown): FirewallRule[] {
  const items = (document as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) return [];
  const hooks = new Map<string, string>();
  for (const item of items) {
    const chain = (item as { chain?: { family?: string; table?: string; name?: string; hook?: string } } | null)?.chain;
    if (chain?.hook !== undefined) hooks.set(`${chain.family}/${chain.table}/${chain.name}`, chain.hook);
  }
  const rules: FirewallRule[] = [];
  for (const item of items) {
    const rule = (item as { rule?: { family?: string; table?: string; chain?: string; handle?: number; expr?: unknown[] } } | null)?.rule;
    if (rule === undefined || !Array.isArray(rule.expr)) continue;
    const family = String(rule.family ?? "");
    const table = String(rule.table ?? "");
    const chain = String(rule.chain ?? "");
    let action: FirewallRule["action"] | undefined;
    let saddr: AddressMatch | undefined;
    let daddr: AddressMatch | undefined;
    let to: string | undefined;
    let icmpOnly = false;
    for (const expr of rule.expr as Record<string, unknown>[]) {
      if (expr === null || typeof expr !== "object") continue;
      if ("match" in expr) {
        const m = expr.match as { op?: string; left?: { payload?: { protocol?: string; field?: string } }; right?: unknown };
        const field = m.left?.payload?.field;
        const proto = m.left?.payload?.protocol;
        const meta = (m.left as { meta?: { key?: string } } | undefined)?.meta?.key;
        const isIcmp = (v: unknown): boolean => v === "icmp" || v === "icmpv6" || v === "ipv6-icmp";
        if (proto === "icmp" || proto === "icmpv6") icmpOnly = true;
        else if ((meta === "l4proto" || (proto === "ip" && field === "protocol") || (proto === "ip6" && field === "nexthdr")) && m.op !== "!=" && isIcmp(m.right)) icmpOnly = true;
        if ((proto === "ip" || proto === "ip6") && (field === "saddr" || field === "daddr")) {
          const match: AddressMatch = { negated: m.op === "!=", cidrs: toCidrs(m.right) };
          if (field === "saddr") saddr = match;
          else daddr = match;
        }
      } else if ("drop" in expr) action = "drop";
      else if ("reject" in expr) action = "reject";
      else if ("masquerade" in expr) action = "masquerade";
      else if ("snat" in expr || "dnat" in expr) {
        const kind = "snat" in expr ? "snat" : "dnat";
        action = kind;
        const target = (expr[kind] as { addr?: unknown } | null)?.addr;
        if (typeof target === "string") to = target;
      } else if ("accept" in expr && action === undefined) action = "accept";
    }
    if (action === undefined || action === "accept") continue;
    const hook = hooks.get(`${family}/${table}/${chain}`);
    const r: FirewallRule = { family, table, chain, action, where: `${family} ${table} ${chain}${rule.handle !== undefined ? ` #${rule.handle}` : ""}` };
    if (rule.handle !== undefined) r.fix = `nft delete rule ${family} ${table} ${chain} handle ${rule.handle}`;
    if (hook !== undefined) r.hook = hook;
    if (saddr !== undefined) r.saddr = saddr;
    if (daddr !== undefined) r.daddr = daddr;
    if (to !== undefined) r.to = to;
    if (icmpOnly) r.icmpOnly = true;
    rules.push(r);
  }
  return rules;
}

/** The base chains of an `nft -j list ruleset` document whose policy is drop; tolerant like `parseNftRuleset`. */
export function parseNftChainPolicies(document: unknown): ChainPolicy[] {
  const items = (document as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) return [];
  return items.flatMap((item) => {
    const c = (item as { chain?: { family?: string; table?: string; name?: string; hook?: string; policy?: string } } | null)?.chain;
    if (c?.hook === undefined || c.policy !== "drop") return [];
    const [family, table, chain] = [String(c.family), String(c.table), String(c.name)];
    return [{ source: "nft" as const, family, table, chain, hook: c.hook, policy: "drop" as const, fix: `nft chain ${family} ${table} ${chain} '{ policy accept; }'` }];
  });
}

/** Whether a rule's address matches (absent = any) accept a packet from `src` to `dst`. */
export function ruleMatches(rule: FirewallRule, src: string, dst: string): boolean {
  const familyOk = rule.family === "inet" || rule.family === "bridge" || rule.family === "netdev" ||
    (rule.family === "ip" ? probeAddressFamily(src) === "IPv4" : rule.family === "ip6" ? probeAddressFamily(src) === "IPv6" : true);
  return familyOk && matchAddress(rule.saddr, src) && matchAddress(rule.daddr, dst);
}

function matchAddress(match: AddressMatch | undefined, ip: string): boolean {
  if (match === undefined) return true;
  const sameFamily = match.cidrs.filter((c) => probeAddressFamily(c.split("/")[0] ?? "") === probeAddressFamily(ip));
  if (sameFamily.length === 0) return false; // an `ip saddr` match never sees an IPv6 packet
  const inside = sameFamily.some((c) => cidrIncludes(c, ip));
  return match.negated ? !inside : inside;
}

function toCidrs(right: unknown): string[] {
  if (typeof right === "string") return probeAddressFamily(right) ? [asHostCidr(right)] : [];
  if (right === null || typeof right !== "object") return [];
  const r = right as { prefix?: { addr?: string; len?: number }; set?: unknown[]; range?: unknown[] };
  if (r.prefix?.addr !== undefined && r.prefix.len !== undefined) return [`${r.prefix.addr}/${r.prefix.len}`];
  if (Array.isArray(r.set)) return r.set.flatMap((e) => toCidrs(e));
  return [];
}
