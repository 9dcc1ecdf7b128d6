import type { IpFamily } from "@flatnet/core";

export type { IpFamily };

/** A pod to probe from and to. */
export interface CheckPod {
  name: string;
  netns: string;
  node: string;
  /** One per family, e.g. ["10.244.1.2", "fd00:10:244:1::2"]. */
  ips: string[];
}

/** One ordered pair for one destination address: what ICMP and TCP did, and which source the responder saw. */
export interface PairResult {
  from: string;
  to: string;
  family: IpFamily;
  dst: string;
  /** The sender's own pod IP of that family: what the responder must see (no NAT). */
  expectedSource: string;
  icmp: boolean;
  tcp: boolean;
  sawSource?: string;
  noNat: boolean;
  ok: boolean;
  error?: string;
}

export interface CheckReport {
  ok: boolean;
  pods: CheckPod[];
  pairs: PairResult[];
  durationMs: number;
}

/** The seam where the probes engine replaces the lab's own checker: give it the pods, get every ordered pair back. */
export interface Checker {
  check(pods: readonly CheckPod[]): Promise<CheckReport>;
}
