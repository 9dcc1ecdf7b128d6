import type { NodeEvidence } from "./evidence.ts";

/** One conntrack entry as the tracer reads it: the original tuple, the reply tuple the kernel expects, its state and timer. */
export type ConntrackEntry = NonNullable<NodeEvidence["conntrack"]>[number];

/**
 * Parse `conntrack -L -o extended`: per line the protocol (third field), the seconds left on its timer (fifth),
 * the TCP state, the original tuple's `src=`/`dst=`/`sport=`/`dport=` and the reply tuple's, and the
 * `[ASSURED]`/`[UNREPLIED]` flags. Lines that are not entries (the tool's summary, blanks) are skipped.
 * @example parseConntrack("ipv4 2 udp 17 29 src=10.244.2.2 dst=10.244.1.2 sport=5 dport=7471 src=10.244.1.2 dst=172.31.0.12 sport=7471 dport=5")[0]
 * // { protocol: "udp", timeout: 29, src: "10.244.2.2", dst: "10.244.1.2", sport: 5, dport: 7471, replySrc: "10.244.1.2", replyDst: "172.31.0.12", ... }
 */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const protocol = fields[2];
    if (protocol === undefined || !/^ipv[46]$/.test(fields[0] ?? "")) continue;
    const all = (key: string): string[] => fields.flatMap((f) => (f.startsWith(`${key}=`) ? [f.slice(key.length + 1)] : []));
    const [src, replySrc] = all("src");
    const [dst, replyDst] = all("dst");
    const [sport, replySport] = all("sport").map(Number);
    const [dport, replyDport] = all("dport").map(Number);
    if (src === undefined || dst === undefined || replySrc === undefined || replyDst === undefined) continue;
    const entry: ConntrackEntry = { protocol, timeout: Number(fields[4]), src, dst, replySrc, replyDst, flags: fields.filter((f) => /^\[[A-Z]+\]$/.test(f)).map((f) => f.slice(1, -1)) };
    const state = fields[5];
    if (state !== undefined && /^[A-Z_]+$/.test(state)) entry.state = state;
    if (sport !== undefined && dport !== undefined && replySport !== undefined && replyDport !== undefined) Object.assign(entry, { sport, dport, replySport, replyDport });
    out.push(entry);
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

/**
 * Seconds since the entry last saw a packet: the timeout its protocol and state were last refreshed with
 * (`net.netfilter.nf_conntrack_*_timeout*`), minus the seconds left. Undefined when that timeout is not known.
 * @example conntrackIdleSeconds({ protocol: "udp", timeout: 25, flags: [] , ... }, { nf_conntrack_udp_timeout: 30 }) // 5
 */
export function conntrackIdleSeconds(entry: ConntrackEntry, timeouts: Readonly<Record<string, number>>): number | undefined {
  // UDP: ASSURED flows were refreshed with the stream timeout, others with the plain one; TCP: per state.
  const key = entry.protocol === "udp"
    ? (entry.flags.includes("ASSURED") ? "nf_conntrack_udp_timeout_stream" : "nf_conntrack_udp_timeout")
    : entry.protocol === "tcp" && entry.state !== undefined ? `nf_conntrack_tcp_timeout_${entry.state.toLowerCase()}` : undefined;
  const full = key === undefined ? undefined : timeouts[key];
  return full === undefined ? undefined : Math.max(0, full - entry.timeout);
}
