import { describe, expect, it } from "vitest";
import { conntrackIdleSeconds, conntrackNat, parseConntrack } from "./conntrack.ts";

// Recorded `conntrack -L -o extended` (conntrack-tools 1.4.7): a UDP probe SNATed by an nft rule, a TCP flow
// without NAT in TIME_WAIT, an ICMP entry, an IPv6 DNAT; the tool's summary line is skipped if mixed in.
const RECORDED = `ipv4     2 udp      17 29 src=10.99.0.1 dst=10.99.0.2 sport=59513 dport=7471 [UNREPLIED] src=10.99.0.2 dst=10.99.0.9 sport=7471 dport=59513 mark=0 use=1
ipv4     2 tcp      6 117 TIME_WAIT src=10.244.1.2 dst=10.244.2.2 sport=40112 dport=7471 src=10.244.2.2 dst=10.244.1.2 sport=7471 dport=40112 [ASSURED] mark=0 use=1
ipv4     2 icmp     1 29 src=10.244.1.2 dst=10.244.2.2 type=8 code=0 id=7 src=10.244.2.2 dst=10.244.1.2 type=0 code=0 id=7 mark=0 use=1
ipv6     10 tcp      6 117 SYN_SENT src=fd00:244:1::2 dst=fd00:96::1 sport=40000 dport=443 [UNREPLIED] src=fd00:244:2::5 dst=fd00:244:1::2 sport=7471 dport=40000 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
`;
const TIMEOUTS = { nf_conntrack_udp_timeout: 30, nf_conntrack_udp_timeout_stream: 120, nf_conntrack_tcp_timeout_time_wait: 120, nf_conntrack_tcp_timeout_syn_sent: 120 };

describe("parseConntrack", () => {
  it("reads each entry's tuples, ports, timer, state and flags", () => {
    expect(parseConntrack(RECORDED)).toEqual([
      { protocol: "udp", timeout: 29, flags: ["UNREPLIED"], src: "10.99.0.1", dst: "10.99.0.2", sport: 59513, dport: 7471, replySrc: "10.99.0.2", replyDst: "10.99.0.9", replySport: 7471, replyDport: 59513 },
      { protocol: "tcp", timeout: 117, state: "TIME_WAIT", flags: ["ASSURED"], src: "10.244.1.2", dst: "10.244.2.2", sport: 40112, dport: 7471, replySrc: "10.244.2.2", replyDst: "10.244.1.2", replySport: 7471, replyDport: 40112 },
      { protocol: "icmp", timeout: 29, flags: [], src: "10.244.1.2", dst: "10.244.2.2", replySrc: "10.244.2.2", replyDst: "10.244.1.2" },
      { protocol: "tcp", timeout: 117, state: "SYN_SENT", flags: ["UNREPLIED"], src: "fd00:244:1::2", dst: "fd00:96::1", sport: 40000, dport: 443, replySrc: "fd00:244:2::5", replyDst: "fd00:244:1::2", replySport: 7471, replyDport: 40000 },
    ]);
  });

  it("an empty table and lines that are not entries give nothing", () => {
    expect(parseConntrack("")).toEqual([]);
    expect(parseConntrack("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n")).toEqual([]);
  });

  it("names the NAT an entry shows: SNAT from the reply's destination, DNAT from the reply's source", () => {
    const [snat, plain, , dnat] = parseConntrack(RECORDED);
    expect(conntrackNat(snat!)).toEqual({ snat: "10.99.0.9" });
    expect(conntrackNat(plain!)).toEqual({});
    expect(conntrackNat(dnat!)).toEqual({ dnat: "fd00:244:2::5" });
  });

  it("ages an entry by the timeout its protocol and state were refreshed with", () => {
    const [udp, timeWait, icmp] = parseConntrack(RECORDED);
    expect(conntrackIdleSeconds(udp!, TIMEOUTS)).toBe(1);
    expect(conntrackIdleSeconds(timeWait!, TIMEOUTS)).toBe(3);
    expect(conntrackIdleSeconds({ ...udp!, flags: ["ASSURED"], timeout: 60 }, TIMEOUTS)).toBe(60);
    expect(conntrackIdleSeconds(icmp!, TIMEOUTS)).toBeUndefined();
    expect(conntrackIdleSeconds(udp!, {})).toBeUndefined();
  });
});
