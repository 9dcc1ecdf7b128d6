// `nft monitor trace` output, parsed: which table, chain and rule handle dropped or rewrote a traced packet.

/** One line of `nft -a monitor trace`. */
export interface NftTraceEvent {
  id: string;
  family: string;
  table: string;
  chain: string;
  kind: "packet" | "rule" | "policy" | "verdict";
  /** The rule's text (kind "rule"), the packet's fields (kind "packet"). */
  text?: string;
  handle?: number;
  /** `drop`, `accept`, `continue`, `jump x`... for a rule, policy or verdict line. */
  verdict?: string;
}

/** Where the traced packet ended or was rewritten: a rule (with its handle) or a chain's policy. */
export interface NftTraceOutcome {
  action: "drop" | "nat";
  family: string;
  table: string;
  chain: string;
  handle?: number;
  rule?: string;
  /** `nft delete rule FAMILY TABLE CHAIN handle N`, as text (never run). */
  fix?: string;
}

const LINE = /^trace id (\S+) (\S+) (\S+) (\S+) (packet|rule|policy|verdict):?\s*(.*)$/;

/**
 * Parse `nft -a monitor trace` lines; other lines (errors, blanks) are skipped.
 * @example parseNftTrace('trace id 31 ip fn_tx_fault out rule ip daddr 10.99.1.2 drop # handle 2 (verdict drop)')
 * // [{ id: "31", family: "ip", table: "fn_tx_fault", chain: "out", kind: "rule", text: "ip daddr 10.99.1.2 drop", handle: 2, verdict: "drop" }]
 */
export function parseNftTrace(text: string): NftTraceEvent[] {
  const out: NftTraceEvent[] = [];
  for (const raw of text.split("\n")) {
    const match = LINE.exec(raw.trim());
    if (match === null) continue;
    const [, id, family, table, chain, kind, restRaw] = match as unknown as [string, string, string, string, string, NftTraceEvent["kind"], string];
    const rest = restRaw.trim();
    const event: NftTraceEvent = { id, family, table, chain, kind };
    if (kind === "packet") event.text = rest;
    else if (kind === "rule") {
      const verdict = /\(verdict ([^)]+)\)\s*$/.exec(rest);
      let body = verdict === null ? rest : rest.slice(0, verdict.index).trim();
      const handle = /\s*# handle (\d+)$/.exec(body);
      if (handle !== null) {
        event.handle = Number(handle[1]);
        body = body.slice(0, handle.index).trim();
      }
      event.text = body;
      if (verdict !== null) event.verdict = verdict[1] as string;
    } else event.verdict = rest.replace(/^verdict\s+/, "");
    out.push(event);
  }
  return out;
}

/**
 * What the first traced packet met: the rule or policy that dropped it, and the NAT rules that rewrote it
 * (a rule whose text has `snat`, `dnat`, `masquerade` or `redirect`), in the order they applied.
 * @example nftTraceOutcomes(parseNftTrace(out)) // [{ action: "drop", family: "ip", table: "fn_tx_fault", chain: "out", handle: 2, ... }]
 */
export function nftTraceOutcomes(events: readonly NftTraceEvent[]): NftTraceOutcome[] {
  // A kernel may give one packet a new trace id at each hook: the ids whose packet line shows the same
  // IPv4 id (or, for IPv6, flow label and source port), which NAT leaves alone, are the same packet.
  const keyOf = (id: string): string | undefined => {
    const text = events.find((e) => e.id === id && e.kind === "packet")?.text ?? "";
    const field = (name: string): string => new RegExp(`\\b${name} (\\S+)`).exec(text)?.[1] ?? "";
    const key = field("ip id") || [field("ip6 flowlabel"), field("udp sport") || field("tcp sport")].join("/");
    return key === "/" ? undefined : key;
  };
  const first = events[0]?.id;
  const firstKey = first === undefined ? undefined : keyOf(first);
  const same = new Set([...new Set(events.map((e) => e.id))].filter((id) => id === first || (firstKey !== undefined && keyOf(id) === firstKey)));
  const out: NftTraceOutcome[] = [];
  for (const e of events) {
    if (!same.has(e.id)) continue;
    const where = { family: e.family, table: e.table, chain: e.chain };
    if (e.kind === "rule" && e.handle !== undefined) {
      const fix = `nft delete rule ${e.family} ${e.table} ${e.chain} handle ${e.handle}`;
      const rule = e.text ?? "";
      if (e.verdict === "drop" || e.verdict === "reject") out.push({ action: "drop", ...where, handle: e.handle, rule, fix });
      else if (/\b(snat|dnat|masquerade|redirect)\b/.test(rule)) out.push({ action: "nat", ...where, handle: e.handle, rule, fix });
    } else if (e.kind === "policy" && e.verdict === "drop") out.push({ action: "drop", ...where });
  }
  return out;
}
