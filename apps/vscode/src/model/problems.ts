/**
 * Flat-network problems found in a cluster view (IPs outside their node's CIDR, duplicate IPs, overlapping
 * node CIDRs, agents down) and in probe results (NAT violations, unreachable pairs, MTU black holes).
 */
import { type Cidr, type PairResult, cidrContains, cidrsOverlap, formatIp, safeParseCidr, safeParseIp, unmapIp } from "@flatnet/core";
import { type ClusterView, podKey } from "./cluster-view.ts";
import { hasMtuBlackhole, hasNatViolation } from "./pair-faults.ts";

export type ProblemKind =
  | "nat-violation"
  | "ip-outside-cidr"
  | "duplicate-ip"
  | "unreachable-pair"
  | "mtu-blackhole"
  | "cidr-overlap"
  | "invalid-address"
  | "agent-down";

export interface Problem {
  /** Stable across refreshes, so tree items keep their expansion state. */
  id: string;
  kind: ProblemKind;
  severity: "error" | "warning";
  message: string;
  node?: string;
  pod?: string;
  ip?: string;
  pairId?: string;
}

/** Display order and title of each kind in the Problems group. */
export const PROBLEM_KINDS: readonly { kind: ProblemKind; title: string }[] = [
  { kind: "nat-violation", title: "NAT violations" },
  { kind: "unreachable-pair", title: "Unreachable pairs" },
  { kind: "mtu-blackhole", title: "MTU black holes" },
  { kind: "ip-outside-cidr", title: "IPs outside their node's CIDR" },
  { kind: "duplicate-ip", title: "Duplicate IPs" },
  { kind: "cidr-overlap", title: "Overlapping node CIDRs" },
  { kind: "invalid-address", title: "Invalid addresses" },
  { kind: "agent-down", title: "Agents down" },
];

/** Problems visible in the inventory alone, without probing. */
export function findInventoryProblems(cluster: ClusterView): Problem[] {
  const problems: Problem[] = [];
  const cidrsByNode = new Map<string, Cidr[]>();
  const nodeCidrs: { node: string; text: string; cidr: Cidr }[] = [];
  for (const node of cluster.nodes) {
    const cidrs: Cidr[] = [];
    for (const text of node.podCidrs) {
      // Lenient when reading: a podCIDR written with host bits still names its network.
      const parsed = safeParseCidr(text, { maskHostBits: true });
      if (!parsed.success) {
        problems.push({
          id: `invalid-cidr:${node.name}:${text}`,
          kind: "invalid-address",
          severity: "error",
          message: `node ${node.name} has pod CIDR "${text}", which is not a valid CIDR`,
          node: node.name,
        });
        continue;
      }
      cidrs.push(parsed.data);
      nodeCidrs.push({ node: node.name, text, cidr: parsed.data });
    }
    cidrsByNode.set(node.name, cidrs);
    if (node.agent === "down") {
      problems.push({
        id: `agent-down:${node.name}`,
        kind: "agent-down",
        severity: "error",
        message: `the flatnet agent on ${node.name} does not answer`,
        node: node.name,
      });
    }
  }
  for (let i = 0; i < nodeCidrs.length; i++) {
    for (let j = i + 1; j < nodeCidrs.length; j++) {
      const a = nodeCidrs[i]!;
      const b = nodeCidrs[j]!;
      if (a.node !== b.node && cidrsOverlap(a.cidr, b.cidr)) {
        problems.push({
          id: `cidr-overlap:${a.node}:${a.text}:${b.node}:${b.text}`,
          kind: "cidr-overlap",
          severity: "error",
          message: `pod CIDR ${a.text} of ${a.node} overlaps ${b.text} of ${b.node}`,
          node: a.node,
        });
      }
    }
  }
  const owners = new Map<string, { text: string; pods: string[]; nodes: Set<string> }>();
  for (const pod of cluster.pods) {
    if (pod.hostNetwork) continue;
    const key = podKey(pod);
    for (const ip of pod.ips) {
      const parsed = safeParseIp(ip);
      if (!parsed.success) {
        problems.push({
          id: `invalid-ip:${key}:${ip}`,
          kind: "invalid-address",
          severity: "error",
          message: `pod ${key} has IP "${ip}", which is not a valid address`,
          pod: key,
          node: pod.node,
        });
        continue;
      }
      // A dual-stack socket may report an IPv4 pod IP mapped (::ffff:a.b.c.d): it is the IPv4 address.
      const address = unmapIp(parsed.data);
      if (!(cidrsByNode.get(pod.node) ?? []).some((cidr) => cidrContains(cidr, address))) {
        const cidrs = cluster.nodes.find((node) => node.name === pod.node)?.podCidrs ?? [];
        problems.push({
          id: `outside:${key}:${ip}`,
          kind: "ip-outside-cidr",
          severity: "error",
          message:
            cidrs.length === 0
              ? `pod ${key} has IP ${ip} but node ${pod.node} has no pod CIDR`
              : `pod ${key} has IP ${ip}, outside node ${pod.node}'s pod CIDRs ${cidrs.join(", ")}`,
          pod: key,
          node: pod.node,
          ip,
        });
      }
      const canonical = formatIp(address);
      const owner = owners.get(canonical) ?? { text: ip, pods: [], nodes: new Set<string>() };
      owner.pods.push(key);
      owner.nodes.add(pod.node);
      owners.set(canonical, owner);
    }
  }
  for (const owner of owners.values()) {
    if (owner.pods.length < 2) continue;
    problems.push({
      id: `duplicate:${owner.text}`,
      kind: "duplicate-ip",
      severity: "error",
      message: `IP ${owner.text} is used by ${owner.pods.length} pods: ${owner.pods.join(", ")}`,
      ip: owner.text,
      node: [...owner.nodes][0],
    });
  }
  return problems;
}

function describePair(result: PairResult): string {
  const { src, dst, family } = result.pair;
  return `${src.pod} (${src.node}, ${src.ip}) -> ${dst.pod} (${dst.node}, ${dst.ip}) ${family}`;
}

function because(result: PairResult): string {
  const reasons = result.diagnosis.map((diagnosis) => diagnosis.message);
  return reasons.length > 0 ? `: ${reasons.join("; ")}` : result.error ? `: ${result.error}` : "";
}

/** Problems shown by probe results; `inconclusive` and `excluded` pairs are not data-plane failures. */
export function findProbeProblems(results: Iterable<PairResult>): Problem[] {
  const problems: Problem[] = [];
  for (const result of results) {
    const base = { pairId: result.pair.id, node: result.pair.src.node, severity: "error" as const };
    if (hasNatViolation(result)) {
      problems.push({
        ...base,
        id: `nat:${result.pair.id}`,
        kind: "nat-violation",
        message: `${describePair(result)}: the receiver saw ${result.nat.observedSrc ?? "another address"}, not ${result.nat.expectedSrc}${because(result)}`,
        ip: result.nat.observedSrc,
      });
    }
    if (result.verdict === "failed" && (result.problems.includes("tcp-unreachable") || result.problems.includes("udp-unreachable"))) {
      problems.push({ ...base, id: `unreachable:${result.pair.id}`, kind: "unreachable-pair", message: `${describePair(result)} is unreachable${because(result)}` });
    }
    if (hasMtuBlackhole(result)) {
      problems.push({ ...base, id: `mtu:${result.pair.id}`, kind: "mtu-blackhole", message: `${describePair(result)} drops full-size packets${because(result)}` });
    }
  }
  return problems;
}
