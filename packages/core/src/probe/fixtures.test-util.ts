import type { DialResult, EchoReply, ProbePair } from "./types.ts";

// Shared builders for the probe unit tests (not a test file itself).

export function pair(src = "pod-1-0", srcNode = "node-1", srcIp = "10.244.1.2", dst = "pod-2-0", dstNode = "node-2", dstIp = "10.244.2.2"): ProbePair {
  return {
    id: `${src}>${dst}/IPv4`,
    src: { pod: src, node: srcNode, ip: srcIp, port: 7471 },
    dst: { pod: dst, node: dstNode, ip: dstIp, port: 7471 },
    family: srcIp.includes(":") ? "IPv6" : "IPv4",
    path: srcNode === dstNode ? "same-node" : "cross-node",
  };
}

export function reply(p: ProbePair, observedSrc = p.src.ip, overrides: Partial<EchoReply> = {}): EchoReply {
  return {
    v: 1,
    probeId: "x",
    seq: 0,
    transport: "tcp",
    observedSrc: { ip: observedSrc, port: 40000 },
    localDst: { ip: p.dst.ip, port: 7471 },
    responder: { pod: p.dst.pod, node: p.dst.node, podIps: [p.dst.ip], nodePodCidrs: [] },
    bytesReceived: 0,
    ...overrides,
  };
}

export function goodDial(p: ProbePair, rtt = [0.1, 0.2]): DialResult {
  return {
    pairId: p.id,
    controlOk: true,
    tcp: { ok: true, rttMs: rtt, reply: reply(p) },
    udp: { sent: 2, received: 2, rttMs: [0.05, 0.06], reply: reply(p) },
    mtu: { tcpBytes: 65536, tcpOk: true, udpBytes: 1422, udpOk: true },
  };
}
