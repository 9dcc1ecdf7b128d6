import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { traceOnePacket } from "../../apps/agent/src/linux/nft-trace.ts";
import { inNetns, isRoot } from "../probe/topology.ts";
import { removeNetns, vethPair } from "./veth-pair.ts";

// `--trace` on a real kernel: an nft drop rule in one namespace (fn-tx-nta) for UDP to its peer (fn-tx-ntb); a
// live `meta nftrace` of one probe packet names that table, chain and rule handle, and the ruleset is what it was.

const A = "fn-tx-nta";
const B = "fn-tx-ntb";
const root = isRoot();
if (!root) console.log("nftrace test skipped: it needs root to create network namespaces");

const send = async (): Promise<void> => void inNetns(A, "bash", ["-c", "echo probe > /dev/udp/10.99.1.2/7471"], undefined, true);
const ruleset = (): string => inNetns(A, "nft", ["-a", "list", "ruleset"]);

describe.skipIf(!root)("trace --trace: a live nftrace of one probe packet", () => {
  beforeAll(() => {
    vethPair(A, B, "10.99.1");
    inNetns(A, "nft", ["-f", "-"], "table ip fn_tx_fault {\n  chain out { type filter hook output priority 0; ip daddr 10.99.1.2 udp dport 7471 drop; }\n}\n");
  });

  afterAll(() => removeNetns(A, B));

  it("names the table, chain and handle of the drop rule, and leaves the ruleset as it was", async () => {
    const before = ruleset();
    const handle = Number(/drop # handle (\d+)/.exec(before)?.[1]);
    const result = await traceOnePacket(A, { protocol: "udp", src: "10.99.1.1", dst: "10.99.1.2", dport: 7471 }, send);
    expect(result.outcomes[0]).toEqual({
      action: "drop", family: "ip", table: "fn_tx_fault", chain: "out", handle, rule: "ip daddr 10.99.1.2 udp dport 7471 drop", fix: `nft delete rule ip fn_tx_fault out handle ${handle}`,
    });
    expect(ruleset()).toBe(before);
  });

  it("removes its table also when the probe is never seen (nothing sent)", async () => {
    const before = ruleset();
    const result = await traceOnePacket(A, { protocol: "udp", dst: "10.99.1.2", dport: 7471 }, async () => undefined, { timeoutMs: 300 });
    expect(result.outcomes).toEqual([]);
    expect(ruleset()).toBe(before);
  });
});
