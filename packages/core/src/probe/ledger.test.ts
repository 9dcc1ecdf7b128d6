import { describe, expect, it } from "vitest";
import { checkIpamLedger, type LedgerInput } from "./ledger.ts";

const base = (): LedgerInput => ({
  nodes: [
    { name: "node-1", podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"] },
    { name: "node-2", podCidrs: ["10.244.2.0/24"] },
  ],
  allocations: [
    { node: "node-1", ip: "10.244.1.2", pod: "a" },
    { node: "node-1", ip: "fd00:10:244:1::2", pod: "a" },
    { node: "node-2", ip: "10.244.2.2", pod: "b" },
  ],
  pods: [
    { name: "a", node: "node-1", ips: ["10.244.1.2", "fd00:10:244:1::2"] },
    { name: "b", node: "node-2", ips: ["10.244.2.2"] },
  ],
});

describe("checkIpamLedger", () => {
  it.each<[string, (i: LedgerInput) => void, [string, string, string[]][]]>([
    ["consistent", () => {}, []],
    ["leaked allocation", (i) => i.allocations.push({ node: "node-2", ip: "10.244.2.9", pod: "gone" }),
      [["allocation-without-pod", "10.244.2.9", ["node-2"]]]],
    ["pod IP unknown to the ledger", (i) => i.allocations.splice(2, 1),
      [["pod-ip-not-in-ledger", "10.244.2.2", ["node-2"]]]],
    ["same IP allocated on two nodes", (i) => i.allocations.push({ node: "node-2", ip: "10.244.1.2" }),
      [["duplicate-ip", "10.244.1.2", ["node-1", "node-2"]], ["allocation-without-pod", "10.244.1.2", ["node-2"]]]],
    ["two pods with one IP", (i) => { i.pods.push({ name: "c", node: "node-2", ips: ["10.244.2.2"] }); },
      [["duplicate-ip", "10.244.2.2", ["node-2"]]]],
    ["pod IP outside its node's CIDR", (i) => { i.pods[1]!.ips = ["10.244.1.77"]; i.allocations[2]!.ip = "10.244.1.77"; },
      [["pod-ip-outside-cidr", "10.244.1.77", ["node-2"]]]],
    ["mapped IPv4 in the ledger equals the pod's IPv4", (i) => { i.allocations[2]!.ip = "::ffff:10.244.2.2"; }, []],
  ])("%s", (_n, mutate, expected) => {
    const input = base();
    mutate(input);
    expect(checkIpamLedger(input).map((f) => [f.code, f.ip, f.nodes])).toEqual(expected);
  });

  it("names the pod and node in its message", () => {
    const input = base();
    input.allocations.push({ node: "node-2", ip: "10.244.2.9", pod: "gone" });
    expect(checkIpamLedger(input)[0]!.message).toBe("10.244.2.9 is allocated on node-2 to gone but no live pod there has it");
  });
});
