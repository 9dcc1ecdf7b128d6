import type { NodeEvidence } from "./evidence.ts";

/** One conntrack entry as the tracer reads it: the original direction and the reply the kernel expects. */
export type ConntrackEntry = NonNullable<NodeEvidence["conntrack"]>[number];

/**
 * Parse `conntrack -L -o extended`: per line, the protocol name (third field), then the original tuple's
 * `src=`/`dst=` and the reply tuple's. A NAT that already happened shows as a reply tuple that is not the
 * original one turned round. Lines that are not entries (the tool's summary on stderr, blanks) are skipped.
 * @example parseConntrack("ipv4 2 udp 17 29 src=10.244.2.2 dst=10.244.1.2 sport=5 dport=7471 src=10.244.1.2 dst=172.31.0.12 sport=7471 dport=5")
 * // [{ protocol: "udp", src: "10.244.2.2", dst: "10.244.1.2", replySrc: "10.244.1.2", replyDst: "172.31.0.12" }]
 */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const protocol = fields[2];
    if (protocol === undefined || !/^ipv[46]$/.test(fields[0] ?? "")) continue;
    const srcs = fields.flatMap((f) => (f.startsWith("src=") ? [f.slice(4)] : []));
    const dsts = fields.flatMap((f) => (f.startsWith("dst=") ? [f.slice(4)] : []));
    const [src, replySrc] = srcs;
    const [dst, replyDst] = dsts;
    if (src === undefined || dst === undefined || replySrc === undefined || replyDst === undefined) continue;
    out.push({ protocol, src, dst, replySrc, replyDst });
  }
  return out;
}

/** What NAT an entry shows: the source rewritten (its reply goes elsewhere) and/or the destination. */
export function conntrackNat(entry: ConntrackEntry): { snat?: string; dnat?: string } {
  const out: { snat?: string; dnat?: string } = {};
  if (entry.replyDst !== entry.src) out.snat = entry.replyDst;
  if (entry.replySrc !== entry.dst) out.dnat = entry.replySrc;
  return out;
}
