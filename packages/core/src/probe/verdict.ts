import { sameAddress, unmapAddress } from "./address.ts";
import type { DialResult, EchoReply, NatVerdict, PairProblem, PairResult, ProbePair, RttSummary } from "./types.ts";

/** The judged outcome of one attempt at one pair. */
export interface AttemptOutcome {
  pass: boolean;
  /** The control path failed: nothing is known about the data path. */
  inconclusive: boolean;
  problems: PairProblem[];
  nat: PairResult["nat"];
  rttSamples: number[];
  udpLossRatio?: number;
  mtu?: PairResult["mtu"];
  error?: string;
}

/**
 * Classify the source address a responder saw: the sender's pod IP (after unmapping `::ffff:a.b.c.d`) is
 * `nat-free`, one of the sender node's own addresses is `snat-to-node-ip`, anything else `snat-other`.
 * `acceptedSrcs` are further addresses that count as `nat-free`: a node sender's own source addresses (its node
 * IPs, bridge gateway, VTEP), whichever the kernel's source selection picked for the route.
 * @example classifyNat("::ffff:10.244.1.2", "10.244.1.2", []) === "nat-free"
 */
export function classifyNat(
  observedSrc: string | undefined,
  senderPodIp: string,
  senderNodeIps: readonly string[],
  acceptedSrcs: readonly string[] = [],
): NatVerdict {
  if (observedSrc === undefined || observedSrc === "") return "unknown";
  if (sameAddress(observedSrc, senderPodIp) || acceptedSrcs.some((ip) => sameAddress(ip, observedSrc))) return "nat-free";
  if (senderNodeIps.some((ip) => sameAddress(ip, observedSrc))) return "snat-to-node-ip";
  return "snat-other";
}

/**
 * Judge one dial of one pair: TCP echo, UDP echo (any loss fails the attempt), the NAT verdict, the
 * destination seen by the responder (DNAT), the responder's identity, and the MTU checks (judged only when
 * the small probe of the same transport passed, so an unreachable pair is not also an MTU failure).
 */
export function evaluateAttempt(pair: ProbePair, dial: DialResult, senderNodeIps: readonly string[]): AttemptOutcome {
  const expected = expectedNat(pair);
  const expectedSrc = expected.expectedSrc;
  if (!dial.controlOk) {
    return {
      pass: false,
      inconclusive: true,
      problems: ["control-path"],
      nat: { verdict: "unknown", ...expected },
      rttSamples: [],
      error: dial.controlError ?? "control path failed",
    };
  }
  const problems: PairProblem[] = [];
  const errors: string[] = [];
  const rttSamples: number[] = [];
  const tcp = dial.tcp;
  const udp = dial.udp;
  if (tcp !== undefined) {
    rttSamples.push(...tcp.rttMs);
    if (!tcp.ok) {
      problems.push("tcp-unreachable");
      errors.push(`tcp: ${tcp.error ?? "no reply"}`);
    }
  }
  let udpLossRatio: number | undefined;
  if (udp !== undefined && udp.sent > 0) {
    rttSamples.push(...udp.rttMs);
    udpLossRatio = (udp.sent - udp.received) / udp.sent;
    if (udp.received === 0) {
      problems.push("udp-unreachable");
      errors.push(`udp: ${udp.error ?? `0/${udp.sent} replies`}`);
    } else if (udp.received < udp.sent) {
      problems.push("udp-loss");
      errors.push(`udp: ${udp.received}/${udp.sent} replies`);
    }
  }
  const reply: EchoReply | undefined = tcp?.reply ?? udp?.reply;
  const observed = reply ? unmapAddress(reply.observedSrc.ip) : undefined;
  const natVerdict = classifyNat(observed, pair.src.ip, pair.src.kind === "node" ? [] : senderNodeIps, pair.src.sourceIps ?? []);
  if (natVerdict === "snat-to-node-ip" || natVerdict === "snat-other") {
    problems.push("nat-violation");
    const want = expected.expectedSrcs === undefined ? expectedSrc : `one of ${pair.src.node}'s own addresses (${expected.expectedSrcs.join(", ")})`;
    errors.push(`nat: responder saw ${observed} (${natVerdict}), expected ${want}`);
  }
  if (reply !== undefined) {
    // An empty localDst means the transport could not tell (a wildcard-bound UDP socket).
    if (reply.localDst.ip !== "" && !sameAddress(reply.localDst.ip, pair.dst.ip)) {
      problems.push("dnat");
      errors.push(`dnat: probe to ${pair.dst.ip} arrived at ${unmapAddress(reply.localDst.ip)}`);
    }
    if (reply.responder.pod !== pair.dst.pod || reply.responder.node !== pair.dst.node) {
      problems.push("wrong-responder");
      errors.push(`identity: ${pair.dst.ip} answered as ${reply.responder.pod} on ${reply.responder.node}, expected ${pair.dst.pod} on ${pair.dst.node}`);
    }
  }
  let mtu: PairResult["mtu"];
  if (dial.mtu !== undefined) {
    mtu = { tcpBytes: dial.mtu.tcpBytes, udpBytes: dial.mtu.udpBytes };
    const tcpBaseOk = tcp === undefined || tcp.ok;
    const udpBaseOk = udp === undefined || udp.received > 0;
    if (dial.mtu.tcpOk !== undefined && tcpBaseOk) {
      mtu.tcpOk = dial.mtu.tcpOk;
      if (!dial.mtu.tcpOk) {
        problems.push("mtu-tcp-blackhole");
        errors.push(`mtu: ${dial.mtu.tcpBytes}-byte TCP transfer failed (${dial.mtu.tcpError ?? "no reply"})`);
      }
    }
    if (dial.mtu.udpOk !== undefined && udpBaseOk) {
      mtu.udpOk = dial.mtu.udpOk;
      if (!dial.mtu.udpOk) {
        problems.push("mtu-udp-blackhole");
        errors.push(`mtu: ${dial.mtu.udpBytes}-byte UDP datagram lost (${dial.mtu.udpError ?? "no reply"})`);
      }
    }
  }
  const outcome: AttemptOutcome = {
    pass: problems.length === 0,
    inconclusive: false,
    problems,
    nat: observed === undefined ? { verdict: natVerdict, ...expected } : { verdict: natVerdict, observedSrc: observed, ...expected },
    rttSamples,
  };
  if (udpLossRatio !== undefined) outcome.udpLossRatio = udpLossRatio;
  if (mtu !== undefined) outcome.mtu = mtu;
  if (errors.length > 0) outcome.error = errors.join("; ");
  return outcome;
}

/**
 * The pair's result from its attempts in order: passed first time `ok`; passed on attempt k > 1 `flaky`
 * (attempts = k); never passed: `inconclusive` if every attempt lost the control path, else `failed`
 * (the last data-path failure is reported).
 */
export function combineAttempts(pair: ProbePair, attempts: readonly AttemptOutcome[]): PairResult {
  if (pair.excluded !== undefined) {
    return {
      pair,
      verdict: "excluded",
      attempts: 0,
      problems: [],
      nat: { verdict: "unknown", ...expectedNat(pair) },
      error: pair.excluded,
      diagnosis: [],
    };
  }
  if (attempts.length === 0) throw new Error(`combineAttempts: pair ${pair.id} has no attempts`);
  const passedAt = attempts.findIndex((a) => a.pass);
  let chosen: AttemptOutcome;
  let verdict: PairResult["verdict"];
  if (passedAt >= 0) {
    chosen = attempts[passedAt] as AttemptOutcome;
    verdict = passedAt === 0 ? "ok" : "flaky";
  } else {
    const dataFailures = attempts.filter((a) => !a.inconclusive);
    chosen = (dataFailures.length > 0 ? dataFailures[dataFailures.length - 1] : attempts[attempts.length - 1]) as AttemptOutcome;
    verdict = dataFailures.length > 0 ? "failed" : "inconclusive";
  }
  const result: PairResult = {
    pair,
    verdict,
    attempts: passedAt >= 0 ? passedAt + 1 : attempts.length,
    problems: chosen.problems,
    nat: chosen.nat,
    diagnosis: [],
  };
  const rtt = summarizeRtt(chosen.rttSamples);
  if (rtt !== undefined) result.rtt = rtt;
  if (chosen.udpLossRatio !== undefined) result.udpLossRatio = chosen.udpLossRatio;
  if (chosen.mtu !== undefined) result.mtu = chosen.mtu;
  if (chosen.error !== undefined) result.error = chosen.error;
  return result;
}

/**
 * The source a pair's receiver should see. A pod sender: its pod IP. A node sender: any of its own source
 * addresses (`src.sourceIps`: node IPs, bridge gateway, VTEP), listed in `expectedSrcs`; `expectedSrc` is the
 * address probed as the node (its first node IP) so older readers still show one address.
 */
export function expectedNat(pair: ProbePair): { expectedSrc: string; expectedSrcs?: string[] } {
  const expectedSrc = unmapAddress(pair.src.ip);
  if (pair.src.kind !== "node") return { expectedSrc };
  const all = [...new Set([expectedSrc, ...(pair.src.sourceIps ?? []).map(unmapAddress)])];
  return { expectedSrc, expectedSrcs: all };
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; undefined when empty. */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/** p50 and p99 of RTT samples in milliseconds, rounded to microseconds; undefined when empty. */
export function summarizeRtt(samples: readonly number[]): RttSummary | undefined {
  const p50 = percentile(samples, 50);
  const p99 = percentile(samples, 99);
  if (p50 === undefined || p99 === undefined) return undefined;
  const round = (ms: number): number => Math.round(ms * 1000) / 1000;
  return { samples: samples.length, p50Ms: round(p50), p99Ms: round(p99) };
}
