import { execFileSync } from "node:child_process";
import { ipBatch } from "../probe/topology.ts";

// Two namespaces joined by one veth (A: SUBNET.1 on v0, B: SUBNET.2 on v1), for the tracer's small kernel tests.

export function removeNetns(...names: string[]): void {
  for (const name of names) {
    try {
      execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
    } catch {
      /* absent */
    }
  }
}

/** Create (again, if left behind) namespaces `a` and `b` joined by a veth, addressed SUBNET.1/24 and SUBNET.2/24. */
export function vethPair(a: string, b: string, subnet: string): void {
  removeNetns(a, b);
  for (const name of [a, b]) execFileSync("ip", ["netns", "add", name]);
  ipBatch(a, [`link add v0 type veth peer name v1 netns ${b}`, `addr add ${subnet}.1/24 dev v0`, "link set v0 up", "link set lo up"]);
  ipBatch(b, [`addr add ${subnet}.2/24 dev v1`, "link set v1 up"]);
}
