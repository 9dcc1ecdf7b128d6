import { z } from "zod";
import type { ChainPolicy, FirewallRule } from "../probe/firewall.ts";

// Boundary schemas of the evidence an agent (or the lab) gathers about one namespace, read-only, for the tracer.

const str = z.string().optional();
const num = z.number().optional();

/**
 * One forwarding question to a kernel: `ip route get DST from FROM iif IIF mark MARK`. `iifOf` asks the gatherer
 * to use the device of its own route to that address as `iif` (the device the packet arrives on from there).
 */
export const routeQuerySchema = z.object({
  dst: z.string(),
  from: z.string().optional(),
  iif: z.string().optional(),
  iifOf: z.string().optional(),
  mark: z.number().int().nonnegative().optional(),
});
export type RouteQuery = z.infer<typeof routeQuerySchema>;

/** The kernel's answer to one route query: the route it chose, or its error (`No route to host`). */
export const routeLookupSchema = z.object({
  query: routeQuerySchema,
  /** The `iif` used, once `iifOf` was resolved. */
  iif: z.string().optional(),
  route: z
    .object({ type: z.string().optional(), dst: z.string().optional(), gateway: z.string().optional(), dev: z.string().optional(), prefsrc: z.string().optional(), table: z.string().optional() })
    .optional(),
  error: z.string().optional(),
});
export type RouteLookup = z.infer<typeof routeLookupSchema>;

/** One route of any table (`ip -j route show table all`). */
export const routeEntrySchema = z.object({ dst: z.string(), type: str, gateway: str, dev: str, protocol: str, table: str, metric: num, flags: z.array(z.string()).optional() });
export type RouteEntry = z.infer<typeof routeEntrySchema>;

/** One policy routing rule (`ip -j rule`), `action` absent for a table lookup. */
export const policyRuleSchema = z.object({
  priority: z.number(),
  /** Absent: applies to both (as read without a family). */
  family: z.enum(["IPv4", "IPv6"]).optional(),
  ...{ src: str, dst: str, iif: str, fwmark: str, table: str, action: str },
  not: z.boolean().optional(),
});
export type PolicyRule = z.infer<typeof policyRuleSchema>;

const addressMatch = z.object({ negated: z.boolean(), cidrs: z.array(z.string()) });
const ifaceMatch = z.object({ negated: z.boolean(), name: z.string() });
const source = z.enum(["nft", "iptables-nft", "iptables-legacy"]);

/** Where a rule or policy lives: `family table chain`, at `hook`. */
const chainPlace = { family: z.string(), table: z.string(), chain: z.string(), hook: str };

const firewallRuleSchema = z.object({
  ...chainPlace,
  action: z.enum(["drop", "reject", "snat", "masquerade", "dnat", "accept", "other"]),
  saddr: addressMatch.optional(),
  daddr: addressMatch.optional(),
  icmpOnly: z.boolean().optional(),
  ...{ to: str, where: z.string(), source: source.optional(), text: str },
  iif: ifaceMatch.optional(),
  oif: ifaceMatch.optional(),
  ...{ packets: num, fix: str },
}) satisfies z.ZodType<FirewallRule>;

const chainPolicySchema = z.object({ source, ...chainPlace, policy: z.enum(["accept", "drop"]), packets: num, fix: z.string() }) satisfies z.ZodType<ChainPolicy>;

/** A link with its state (`operstate`: UP, DOWN, LOWERLAYERDOWN...) and MTU. */
export const linkEvidenceSchema = z.object({
  name: z.string(),
  state: z.string(),
  mtu: z.number(),
  /** Link flags as `ip link` prints them (`UP`: administratively up; `LOWER_UP`: carrier). */
  flags: z.array(z.string()).optional(),
  mac: z.string().optional(),
  master: z.string().optional(),
  kind: z.string().optional(),
  /** A bridge port in isolated mode (`bridge link set dev PORT isolated on`): it forwards no frames to other isolated ports. */
  isolated: z.boolean().optional(),
  /** The node a port of an underlay bridge leads to, when the gatherer knows it (the lab does). */
  node: z.string().optional(),
});
export type LinkEvidence = z.infer<typeof linkEvidenceSchema>;

/** Everything one namespace says about forwarding, read once and shared by every pair through it. */
export const nodeEvidenceSchema = z.object({
  /** The node's name, the underlay's / router's name, or a pod's name. */
  node: z.string(),
  role: z.enum(["node", "underlay", "router", "pod"]),
  /** The network namespace read, when the reader names it (a lab pod's, for the fix `ip -n NETNS ...`). */
  netns: z.string().optional(),
  lookups: z.array(routeLookupSchema),
  routes: z.array(routeEntrySchema),
  policyRules: z.array(policyRuleSchema),
  firewall: z.array(firewallRuleSchema),
  policies: z.array(chainPolicySchema),
  /** `conntrack -L -o extended`: the original and reply tuples, the seconds left on each entry's timer, its state and flags. */
  conntrack: z
    .array(
      z.object({
        ...{ protocol: z.string(), timeout: z.number(), state: str, flags: z.array(z.string()) },
        ...{ src: z.string(), dst: z.string(), sport: num, dport: num },
        ...{ replySrc: z.string(), replyDst: z.string(), replySport: num, replyDport: num },
      }),
    )
    .optional(),
  neighbours: z.array(z.object({ ip: z.string(), mac: z.string().optional(), dev: z.string(), state: z.array(z.string()) })),
  fdb: z.array(z.object({ mac: z.string(), dev: z.string(), dst: z.string().optional(), master: z.string().optional(), state: z.string().optional() })),
  links: z.array(linkEvidenceSchema),
  sysctls: z.object({
    ipForward: z.number().optional(),
    ip6Forward: z.number().optional(),
    /** `net.ipv4.conf.<dev>.rp_filter`, including `all` and `default`. */
    rpFilter: z.record(z.string(), z.number()),
    /** `net.ipv4.conf.<dev>.forwarding`: a device that does not forward drops what arrives on it for elsewhere. */
    deviceForwarding: z.record(z.string(), z.number()).optional(),
    bridgeNfCallIptables: z.number().optional(),
    /** `net.netfilter.nf_conntrack_{udp,tcp}_timeout*` by their last name part, to age conntrack entries. */
    conntrackTimeouts: z.record(z.string(), z.number()).optional(),
  }),
  /** What could not be read (a missing tool, a refused command): evidence is partial, never fatal. */
  errors: z.array(z.string()),
});
export type NodeEvidence = z.infer<typeof nodeEvidenceSchema>;

/** Body of `POST /v1/evidence`: the route queries to answer besides the node's tables. */
export const evidenceRequestSchema = z.object({ lookups: z.array(routeQuerySchema).max(100_000) });
export type EvidenceRequest = z.infer<typeof evidenceRequestSchema>;

/** A stable key of a route query, to match answers to questions. */
export function routeQueryKey(query: RouteQuery): string {
  return [query.dst, query.from ?? "", query.iif ?? "", query.iifOf ?? "", query.mark ?? ""].join("|");
}
