import { describe, expect, it } from "vitest";
import { conntrackNat, parseConntrack } from "./conntrack.ts";

// Recorded `conntrack -L -o extended` (conntrack-tools 1.4.7): a UDP probe SNATed by an nft rule, a TCP flow
// without NAT, an ICMP entry, an IPv6 DNAT; the tool's summary line goes to stderr but is skipped if mixed in.
const RECORDED = `ipv4     2 udp      17 29 src=10.99.0.1 dst=10.99.0.2 sport=59513 dport=7471 [UNREPLIED] src=10.99.0.2 dst=10.99.0.9 sport=7471 dport=59513 mark=0 use=1
ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.1.2 dst=10.244.2.2 sport=40112 dport=7471 src=10.244.2.2 dst=10.244.1.2 sport=7471 dport=40112 [ASSURED] mark=0 use=1
ipv4     2 icmp     1 29 src=10.244.1.2 dst=10.244.2.2 type=8 code=0 id=7 src=10.244.2.2 dst=10.244.1.2 type=0 code=0 id=7 mark=0 use=1
ipv6     10 tcp      6 117 SYN_SENT src=fd00:244:1::2 dst=fd00:96::1 sport=40000 dport=443 [UNREPLIED] src=fd00:244:2::5 dst=fd00:244:1::2 sport=7471 dport=40000 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
`;

describe("parseConntrack", () => {
  it("reads the original and reply tuples of each entry", () => {
    expect(parseConntrack(RECORDED)).toEqual([
      { protocol: "udp", src: "10.99.0.1", dst: "10.99.0.2", replySrc: "10.99.0.2", replyDst: "10.99.0.9" },
      { protocol: "tcp", src: "10.244.1.2", dst: "10.244.2.2", replySrc: "10.244.2.2", replyDst: "10.244.1.2" },
      { protocol: "icmp", src: "10.244.1.2", dst: "10.244.2.2", replySrc: "10.244.2.2", replyDst: "10.244.1.2" },
      { protocol: "tcp", src: "fd00:244:1::2", dst: "fd00:96::1", replySrc: "fd00:244:2::5", replyDst: "fd00:244:1::2" },
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
});
