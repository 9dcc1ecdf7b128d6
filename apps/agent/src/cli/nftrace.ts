import type { NftTraceOutcome, ProbeEndpoint, ProbePair } from "@flatnet/core";
import { sendUdpDatagram, traceOnePacket } from "../linux/index.ts";
import { requireLabState } from "../lab/probe-source.ts";

// `--trace` of `flatnet trace` and `flatnet check --explain`: one UDP probe packet of a pair, followed live
// through the lab nodes' netfilter (linux/nft-trace.ts), and its human form.

/** What `--trace` saw of one UDP probe packet in one node's netfilter. */
export interface NodeNftTrace {
  node: string;
  /** The rules and policies that dropped or rewrote it, in the order it met them; empty when none did. */
  outcomes: NftTraceOutcome[];
  /** The packet was never seen there (not sent, or lost before that node). */
  seen: boolean;
}

/** One UDP probe packet of the pair, traced live in the source node's netfilter, then in the destination node's. */
export async function nftracePair(stateDir: string, pair: ProbePair): Promise<NodeNftTrace[]> {
  const state = await requireLabState(stateDir);
  const netnsOf = (endpoint: ProbeEndpoint): string | undefined =>
    endpoint.kind === "node" ? state.nodes.find((n) => n.name === endpoint.node)?.netns : state.pods.find((p) => p.name === endpoint.pod)?.netns;
  const from = netnsOf(pair.src);
  if (from === undefined) throw new Error(`--trace: no namespace for ${pair.src.pod} in the lab`);
  const flow = { protocol: "udp" as const, src: pair.src.ip, dst: pair.dst.ip, dport: pair.dst.port };
  const out: NodeNftTrace[] = [];
  for (const node of [...new Set([pair.src.node, pair.dst.node])]) {
    const netns = state.nodes.find((n) => n.name === node)?.netns;
    if (netns === undefined) continue;
    const result = await traceOnePacket(netns, flow, () => sendUdpDatagram(from, pair.dst.ip, pair.dst.port), { timeoutMs: 1500 });
    out.push({ node, outcomes: result.outcomes, seen: result.events.length > 0 });
    if (result.outcomes.some((o) => o.action === "drop")) break; // dropped here: it never reaches the next node
  }
  return out;
}

/** `nftrace node1: dropped by ip t c rule handle 2 (`...`); fix: ...`, one line per outcome (or why there is none). */
export function renderNftrace(traces: readonly NodeNftTrace[], indent: string): string[] {
  const lines: string[] = [];
  for (const t of traces) {
    if (!t.seen) lines.push(`${indent}nftrace ${t.node}: the probe packet was not seen`);
    else if (t.outcomes.length === 0) lines.push(`${indent}nftrace ${t.node}: passed, no rule dropped or rewrote it`);
    for (const o of t.outcomes) {
      const rule = o.handle === undefined ? `${o.chain} policy` : `rule handle ${o.handle}${o.rule ? ` (\`${o.rule}\`)` : ""}`;
      lines.push(`${indent}nftrace ${t.node}: ${o.action === "drop" ? "dropped" : "rewritten (NAT)"} by ${o.family} ${o.table} ${o.chain} ${rule}${o.fix ? `; fix: ${o.fix}` : ""}`);
    }
  }
  return lines;
}
