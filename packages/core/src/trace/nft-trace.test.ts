import { describe, expect, it } from "vitest";
import { nftTraceOutcomes, parseNftTrace } from "./nft-trace.ts";

// Recorded `nft -a monitor trace` (nftables 1.x) of one UDP probe dropped by a rule of another table in output.
const RECORDED = `trace id 3179c424 inet fn_trace output packet: oif "v0" ip saddr 10.99.1.1 ip daddr 10.99.1.2 ip protocol udp udp sport 58010 udp dport 7471
trace id 3179c424 inet fn_trace output rule ip daddr 10.99.1.2 udp dport 7471 meta nftrace set 1 # handle 2 (verdict continue)
trace id 3179c424 inet fn_trace output policy accept 
trace id 3179c424 ip fn_tx_fault out packet: oif "v0" ip saddr 10.99.1.1 ip daddr 10.99.1.2 udp sport 58010 udp dport 7471
trace id 3179c424 ip fn_tx_fault out rule ip daddr 10.99.1.2 udp dport 7471 drop # handle 2 (verdict drop)
`;

describe("nft monitor trace", () => {
  it("parses each line: table, chain, rule text, handle and verdict", () => {
    const events = parseNftTrace(RECORDED);
    expect(events.map((e) => [e.table, e.chain, e.kind, e.handle, e.verdict])).toEqual([
      ["fn_trace", "output", "packet", undefined, undefined],
      ["fn_trace", "output", "rule", 2, "continue"],
      ["fn_trace", "output", "policy", undefined, "accept"],
      ["fn_tx_fault", "out", "packet", undefined, undefined],
      ["fn_tx_fault", "out", "rule", 2, "drop"],
    ]);
    expect(events[4]?.text).toBe("ip daddr 10.99.1.2 udp dport 7471 drop");
  });

  it("names the rule that dropped the packet, with the fix as text", () => {
    expect(nftTraceOutcomes(parseNftTrace(RECORDED))).toEqual([
      { action: "drop", family: "ip", table: "fn_tx_fault", chain: "out", handle: 2, rule: "ip daddr 10.99.1.2 udp dport 7471 drop", fix: "nft delete rule ip fn_tx_fault out handle 2" },
    ]);
  });

  it("follows the packet when the kernel gives it a new trace id at the next hook (same IPv4 id), not another packet", () => {
    const text = `trace id 7cb1519b inet fn_trace prerouting packet: iif "fn-br0" ip saddr 10.244.1.2 ip daddr 10.244.0.2 ip id 5054 udp sport 37858 udp dport 7471
trace id 7cb1519b inet fn_trace prerouting rule ip daddr 10.244.0.2 ip saddr 10.244.1.2 udp dport 7471 meta nftrace set 1 # handle 3 (verdict continue)
trace id 7cb1519b inet fn_trace prerouting policy accept
trace id 99999999 ip other forward packet: iif "fn-br0" ip saddr 10.244.1.9 ip daddr 10.244.0.2 ip id 77 udp sport 1 udp dport 7471
trace id 99999999 ip other forward rule drop # handle 9 (verdict drop)
trace id 12dae7b2 ip fn_tx_fault forward packet: iif "fn-br0" oif "eth0" ip saddr 10.244.1.2 ip daddr 10.244.0.2 ip id 5054 udp sport 37858 udp dport 7471
trace id 12dae7b2 ip fn_tx_fault forward rule ip daddr 10.244.0.2 udp dport 7471 drop # handle 2 (verdict drop)`;
    expect(nftTraceOutcomes(parseNftTrace(text))).toEqual([
      { action: "drop", family: "ip", table: "fn_tx_fault", chain: "forward", handle: 2, rule: "ip daddr 10.244.0.2 udp dport 7471 drop", fix: "nft delete rule ip fn_tx_fault forward handle 2" },
    ]);
  });

  it("names a NAT rule that rewrote it, and a policy drop", () => {
    const text = `trace id 7 ip nat postrouting rule ip saddr 10.244.2.0/24 masquerade # handle 4 (verdict accept)
trace id 7 ip filter forward policy drop
trace id 8 ip other x rule drop # handle 1 (verdict drop)`;
    expect(nftTraceOutcomes(parseNftTrace(text))).toEqual([
      { action: "nat", family: "ip", table: "nat", chain: "postrouting", handle: 4, rule: "ip saddr 10.244.2.0/24 masquerade", fix: "nft delete rule ip nat postrouting handle 4" },
      { action: "drop", family: "ip", table: "filter", chain: "forward" },
    ]);
  });
});
