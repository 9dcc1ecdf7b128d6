import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { conntrackNat } from "@flatnet/core";
import { gatherEvidence } from "../../apps/agent/src/trace/gather.ts";
import { inNetns, isRoot } from "../probe/topology.ts";
import { removeNetns, vethPair } from "./veth-pair.ts";

// The tracer's conntrack evidence on a real kernel: an nft SNAT rule in one namespace (fn-tx-cta) rewrites a UDP
// datagram sent to its peer (fn-tx-ctb); the gathered evidence carries the flow's entry, whose reply tuple names
// the address it was rewritten to. Reading it changes nothing (the table and the ruleset are as before).

const A = "fn-tx-cta";
const B = "fn-tx-ctb";
const root = isRoot();
if (!root) console.log("conntrack evidence test skipped: it needs root to create network namespaces");

describe.skipIf(!root)("trace evidence: conntrack entries of the probe flow", () => {
  beforeAll(() => {
    vethPair(A, B, "10.99.0");
    inNetns(A, "nft", ["-f", "-"], "table ip fn_tx_nat {\n  chain post { type nat hook postrouting priority 100; ip daddr 10.99.0.2 snat to 10.99.0.9; }\n}\n");
    inNetns(A, "bash", ["-c", "echo probe > /dev/udp/10.99.0.2/7471"]);
  });

  afterAll(() => removeNetns(A, B));

  it("the SNAT that already happened shows in the gathered evidence, and reading it is read-only", async () => {
    const before = [inNetns(A, "conntrack", ["-L", "-o", "extended"]), inNetns(A, "nft", ["list", "ruleset"])];
    const evidence = await gatherEvidence(A, [], { node: "node-1" });
    expect(evidence.errors).toEqual([]);
    const entry = evidence.conntrack?.find((e) => e.protocol === "udp" && e.src === "10.99.0.1" && e.dst === "10.99.0.2");
    expect(entry).toEqual({ protocol: "udp", src: "10.99.0.1", dst: "10.99.0.2", replySrc: "10.99.0.2", replyDst: "10.99.0.9" });
    expect(conntrackNat(entry!)).toEqual({ snat: "10.99.0.9" });
    // Same entries (timeouts aside) and the same ruleset afterwards.
    const after = [inNetns(A, "conntrack", ["-L", "-o", "extended"]), inNetns(A, "nft", ["list", "ruleset"])];
    const tuples = (text: string): string[] => text.split("\n").map((l) => l.replace(/^(\S+\s+\d+\s+\S+\s+\d+)\s+\d+/, "$1")).filter(Boolean);
    expect(tuples(after[0]!)).toEqual(tuples(before[0]!));
    expect(after[1]).toEqual(before[1]);
  });
});
