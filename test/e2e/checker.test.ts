import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBridge, attachPod } from "../../apps/agent/src/linux/pod.ts";
import type { PairResult } from "./pod-checker/checker.ts";
import { PodChecker } from "./pod-checker/pod-checker.ts";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { setSysctls } from "../../apps/agent/src/linux/index.ts";
import { createNamespaces, deleteNamespaces, listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";

// The lab's checker against pods on one node bridge (no agent needed), with faults injected by nftables in the pods:
// a SNAT the responder must notice, and a drop that both ICMP and TCP must report.
const PREFIX = "fn-e2-";
const NODE = `${PREFIX}node1`;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("skipping lab checker tests: they create network namespaces and need root");

const pods = [1, 2, 3].map((i) => ({
  name: `pod-node1-${i}`,
  netns: `${PREFIX}pod-node1-${i}`,
  node: "node1",
  ips: [`10.244.1.${i + 1}`, `fd00:10:244:1::${i + 1}`],
}));

const nft = (netns: string, ruleset: string) => run("ip", ["netns", "exec", netns, "nft", "-f", "-"], { input: ruleset });
const summary = (pairs: PairResult[]) =>
  pairs
    .map((p) => `${p.from}>${p.to} ${p.family} icmp=${p.icmp} tcp=${p.tcp} noNat=${p.noNat} ok=${p.ok}`)
    .sort();

describe.skipIf(!isRoot)("lab pod checker", () => {
  beforeAll(async () => {
    await deleteNamespaces(await listLabNamespaces(PREFIX));
    await createNamespaces([NODE, ...pods.map((pod) => pod.netns)]);
    await setSysctls(NODE, { "net.ipv4.ip_forward": "1" });
    await ensureBridge(NODE, { gateways: ["10.244.1.1/24", "fd00:10:244:1::1/64"], mtu: 1500 });
    for (const pod of pods) {
      await attachPod({
        nodeNetns: NODE,
        podNetns: { name: pod.netns },
        containerId: pod.netns,
        ifName: "eth0",
        addresses: [`${pod.ips[0]}/24`, `${pod.ips[1]}/64`],
        gateways: ["10.244.1.1", "fd00:10:244:1::1"],
        mtu: 1500,
      });
    }
  });

  afterAll(async () => {
    await deleteNamespaces(await listLabNamespaces(PREFIX));
  });

  it("sees every ordered pair over both families, with the sender's own address at the responder", async () => {
    const report = await new PodChecker().check(pods);
    expect(report.ok).toBe(true);
    expect(report.pairs).toHaveLength(3 * 2 * 2);
    for (const pair of report.pairs) expect(pair.sawSource).toBe(pair.expectedSource);
  });

  it("reports a SNAT as NAT and a drop as ICMP and TCP failures, and nothing else", async () => {
    // pod-node1-3 rewrites its IPv4 source to 10.99.0.3 (the node routes replies back to it);
    // pod-node1-2 drops new flows from pod-node1-1's IPv6 address (its own flows' replies still pass).
    await run("ip", ["-n", pods[2]!.netns, "addr", "add", "10.99.0.3/32", "dev", "eth0"]);
    await run("ip", ["-n", NODE, "route", "add", "10.99.0.3/32", "via", "10.244.1.4"]);
    await nft(pods[2]!.netns, "table ip fnsnat {\n chain post {\n type nat hook postrouting priority 100;\n oif eth0 snat to 10.99.0.3\n }\n}\n");
    await nft(pods[1]!.netns, "table ip6 fndrop {\n chain in {\n type filter hook input priority 0;\n ip6 saddr fd00:10:244:1::2 ct state new drop\n }\n}\n");
    try {
      const report = await new PodChecker().check(pods);
      expect(report.ok).toBe(false);
      expect(summary(report.pairs)).toEqual([
        "pod-node1-1>pod-node1-2 IPv4 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-1>pod-node1-2 IPv6 icmp=false tcp=false noNat=false ok=false",
        "pod-node1-1>pod-node1-3 IPv4 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-1>pod-node1-3 IPv6 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-2>pod-node1-1 IPv4 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-2>pod-node1-1 IPv6 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-2>pod-node1-3 IPv4 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-2>pod-node1-3 IPv6 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-3>pod-node1-1 IPv4 icmp=true tcp=true noNat=false ok=false",
        "pod-node1-3>pod-node1-1 IPv6 icmp=true tcp=true noNat=true ok=true",
        "pod-node1-3>pod-node1-2 IPv4 icmp=true tcp=true noNat=false ok=false",
        "pod-node1-3>pod-node1-2 IPv6 icmp=true tcp=true noNat=true ok=true",
      ]);
      const natted = report.pairs.find((p) => p.from === "pod-node1-3" && p.to === "pod-node1-1" && p.family === "IPv4");
      expect(natted?.sawSource).toBe("10.99.0.3");
      expect(natted?.error).toBe("NAT: responder saw 10.99.0.3, expected 10.244.1.4");
    } finally {
      await run("ip", ["netns", "exec", pods[2]!.netns, "nft", "delete", "table", "ip", "fnsnat"], { allowFailure: true });
      await run("ip", ["netns", "exec", pods[1]!.netns, "nft", "delete", "table", "ip6", "fndrop"], { allowFailure: true });
    }
  }, 60_000);
});
