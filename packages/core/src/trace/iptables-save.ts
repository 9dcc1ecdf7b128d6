import { probeAddressFamily } from "../probe/address.ts";
import type { ChainPolicy, FirewallRule } from "../probe/firewall.ts";

/** The rules and base-chain policies of one `iptables-save -c` dump, in the diagnosis' common form. */
export interface IptablesRuleset {
  flavour: "iptables-nft" | "iptables-legacy";
  /** Family (`ip`/`ip6`) and table names the dump holds, even empty ones. */
  tables: { family: string; table: string }[];
  rules: FirewallRule[];
  policies: ChainPolicy[];
}

const BUILTIN = new Set(["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]);
const TARGETS: Record<string, FirewallRule["action"]> = { DROP: "drop", REJECT: "reject", SNAT: "snat", MASQUERADE: "masquerade", DNAT: "dnat", ACCEPT: "accept" };

/**
 * Parse the text of `iptables-save -c` / `ip6tables-save -c` (either flavour): every rule with its table, chain,
 * rule number (1-based, as `iptables -D CHAIN N` counts), `-s/-d/-i/-o/-p` matches, target and counters, and the
 * base chains whose policy is DROP. `flavour` names the tool in locations and fixes. Unknown options are kept in
 * `text` only; a line that cannot be read is skipped, since diagnosis must never fail on a foreign ruleset.
 * @example parseIptablesSave("*nat\n:POSTROUTING ACCEPT [0:0]\n[3:180] -A POSTROUTING -s 10.244.2.0/24 -j MASQUERADE\nCOMMIT\n", "iptables-nft")
 */
export function parseIptablesSave(text: string, flavour: "iptables-nft" | "iptables-legacy", ipv6 = false): IptablesRuleset {
  const tool = ipv6 ? flavour.replace("iptables", "ip6tables") : flavour;
  const family = ipv6 ? "ip6" : "ip";
  const rules: FirewallRule[] = [];
  const policies: ChainPolicy[] = [];
  const tables: IptablesRuleset["tables"] = [];
  const numbers = new Map<string, number>();
  let table = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) {
      table = line.slice(1);
      tables.push({ family, table });
      continue;
    }
    const policy = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):\d+\])?/.exec(line);
    if (policy !== null) {
      const [, chain, verdict, packets] = policy as unknown as [string, string, string, string | undefined];
      if (verdict === "DROP") {
        const p: ChainPolicy = { source: flavour, family, table, chain, hook: chain.toLowerCase(), policy: "drop", fix: `${tool} -t ${table} -P ${chain} ACCEPT` };
        if (packets !== undefined) p.packets = Number(packets);
        policies.push(p);
      }
      continue;
    }
    const counters = /^\[(\d+):\d+\]\s+/.exec(line);
    const body = counters === null ? line : line.slice(counters[0].length);
    if (!body.startsWith("-A ")) continue;
    const words = tokenize(body);
    const chain = words[1] ?? "";
    const number = (numbers.get(`${table}/${chain}`) ?? 0) + 1;
    numbers.set(`${table}/${chain}`, number);
    const rule: FirewallRule = {
      family,
      table,
      chain,
      action: "other",
      where: `${tool} ${table} ${chain} rule ${number}`,
      source: flavour,
      text: words.slice(2).join(" "),
      fix: `${tool} -t ${table} -D ${chain} ${number}`,
    };
    if (BUILTIN.has(chain)) rule.hook = chain.toLowerCase();
    if (counters !== null) rule.packets = Number(counters[1]);
    let negated = false;
    for (let i = 2; i < words.length; i++) {
      const word = words[i] as string;
      const value = words[i + 1] ?? "";
      if (word === "!") {
        negated = true;
        continue;
      }
      if (word === "-s" || word === "--source" || word === "-d" || word === "--destination") {
        const match = { negated, cidrs: value.split(",").map((c) => (c.includes("/") ? c : `${c}/${probeAddressFamily(c) === "IPv6" ? 128 : 32}`)) };
        if (word.startsWith("-s") || word === "--source") rule.saddr = match;
        else rule.daddr = match;
        i++;
      } else if (word === "-i" || word === "-o") {
        rule[word === "-i" ? "iif" : "oif"] = { negated, name: value };
        i++;
      } else if (word === "-p" && !negated && /^(icmp|icmpv6|ipv6-icmp)$/.test(value)) {
        rule.icmpOnly = true;
        i++;
      } else if (word === "-j") {
        rule.action = TARGETS[value] ?? "other";
        i++;
      } else if (word === "--to-source" || word === "--to-destination") {
        rule.to = value.replace(/:\d+(-\d+)?$/, "");
        i++;
      }
      negated = false;
    }
    rules.push(rule);
  }
  return { flavour, tables, rules, policies };
}

/**
 * One namespace's netfilter, whoever wrote it: the nft ruleset without the tables iptables-nft manages (those
 * come from its own dump, which names rules as `iptables -D` counts them), plus both iptables flavours.
 */
export function combineNetfilter(
  nft: { rules: FirewallRule[]; policies: ChainPolicy[] },
  iptables: readonly IptablesRuleset[],
): { rules: FirewallRule[]; policies: ChainPolicy[] } {
  const managed = new Set(iptables.filter((r) => r.flavour === "iptables-nft").flatMap((r) => r.tables.map((t) => `${t.family}/${t.table}`)));
  const foreign = <T extends { family: string; table: string }>(x: T): boolean => !managed.has(`${x.family}/${x.table}`);
  return {
    rules: [...nft.rules.filter(foreign), ...iptables.flatMap((r) => r.rules)],
    policies: [...nft.policies.filter(foreign), ...iptables.flatMap((r) => r.policies)],
  };
}

// iptables-save quotes arguments with spaces ("--comment \"a b\""); a word is a quoted run or a run of non-spaces.
function tokenize(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] as string)));
}
