import { cidrIncludes, unmapAddress } from "./address.ts";
import type { LedgerFinding } from "./types.ts";

export interface LedgerInput {
  nodes: { name: string; podCidrs: string[] }[];
  /** The IPAM ledger: every allocation recorded by the nodes' IPAM. */
  allocations: { node: string; ip: string; pod?: string }[];
  /** Live pods and their IPs. */
  pods: { name: string; namespace?: string; node: string; ips: string[] }[];
}

/**
 * Cross-check the IPAM ledger with the live pods: allocations no live pod holds (leaks), pod IPs the ledger
 * does not know, the same IP on two nodes or pods, and pod IPs outside their node's pod CIDRs.
 */
export function checkIpamLedger(input: LedgerInput): LedgerFinding[] {
  const findings: LedgerFinding[] = [];
  const podName = (p: { name: string; namespace?: string }): string => (p.namespace ? `${p.namespace}/${p.name}` : p.name);
  const live = new Map<string, { pod: string; node: string }[]>();
  for (const pod of input.pods) {
    for (const raw of pod.ips) {
      const ip = unmapAddress(raw);
      live.set(ip, [...(live.get(ip) ?? []), { pod: podName(pod), node: pod.node }]);
    }
  }
  const ledger = new Map<string, { node: string; pod?: string }[]>();
  for (const a of input.allocations) {
    const ip = unmapAddress(a.ip);
    ledger.set(ip, [...(ledger.get(ip) ?? []), a.pod === undefined ? { node: a.node } : { node: a.node, pod: a.pod }]);
  }
  for (const [ip, holders] of ledger) {
    const nodes = [...new Set(holders.map((h) => h.node))].sort();
    if (nodes.length > 1) {
      findings.push({ code: "duplicate-ip", ip, nodes, message: `${ip} is allocated on ${nodes.length} nodes: ${nodes.join(", ")}` });
    }
    for (const holder of holders) {
      if (!(live.get(ip) ?? []).some((l) => l.node === holder.node)) {
        const f: LedgerFinding = {
          code: "allocation-without-pod",
          ip,
          nodes: [holder.node],
          message: `${ip} is allocated on ${holder.node}${holder.pod ? ` to ${holder.pod}` : ""} but no live pod there has it`,
        };
        if (holder.pod !== undefined) f.pod = holder.pod;
        findings.push(f);
      }
    }
  }
  const cidrsOf = new Map(input.nodes.map((n) => [n.name, n.podCidrs]));
  for (const [ip, holders] of live) {
    const pods = [...new Set(holders.map((h) => h.pod))].sort();
    if (pods.length > 1) {
      const nodes = [...new Set(holders.map((h) => h.node))].sort();
      findings.push({ code: "duplicate-ip", ip, nodes, message: `${ip} is used by ${pods.length} pods: ${pods.join(", ")}` });
    }
    for (const holder of holders) {
      if (!(ledger.get(ip) ?? []).some((l) => l.node === holder.node)) {
        findings.push({ code: "pod-ip-not-in-ledger", ip, nodes: [holder.node], pod: holder.pod, message: `${holder.pod} has ${ip}, which ${holder.node}'s IPAM ledger does not record` });
      }
      const cidrs = cidrsOf.get(holder.node) ?? [];
      if (cidrs.length > 0 && !cidrs.some((c) => cidrIncludes(c, ip))) {
        findings.push({ code: "pod-ip-outside-cidr", ip, nodes: [holder.node], pod: holder.pod, message: `${ip} of ${holder.pod} is outside ${holder.node}'s pod CIDR ${cidrs.join(", ")}` });
      }
    }
  }
  return findings;
}
