/** What a probe pair result says is wrong, in one place: the problems list and the matrix marks agree by construction. */
import type { PairResult } from "@flatnet/core";

/** The receiver saw another source address than the sender's pod IP (the flat model forbids NAT). */
export function hasNatViolation(result: PairResult): boolean {
  return result.problems.includes("nat-violation") || result.nat.verdict === "snat-to-node-ip" || result.nat.verdict === "snat-other";
}

/** Full-size packets are dropped while small ones pass (TCP or UDP). */
export function hasMtuBlackhole(result: PairResult): boolean {
  return result.problems.includes("mtu-tcp-blackhole") || result.problems.includes("mtu-udp-blackhole");
}
