import { describe, expect, it } from "vitest";
import { buildProbePlan, pairId, type ProbeInventory } from "./plan.ts";

function inventory(nodes: number, podsPerNode: number, dual = false): ProbeInventory {
  const inv: ProbeInventory = { cluster: { name: "t", source: "fixture" }, nodes: [], pods: [] };
  for (let n = 1; n <= nodes; n++) {
    inv.nodes.push({ name: `node-${n}`, podCidrs: [`10.244.${n}.0/24`], nodeIps: [`172.31.0.${10 + n}`] });
    for (let p = 0; p < podsPerNode; p++) {
      const ips = [`10.244.${n}.${p + 2}`];
      if (dual) ips.push(`fd00:10:244:${n}::${p + 2}`);
      inv.pods.push({ name: `pod-${n}-${p}`, node: `node-${n}`, ips });
    }
  }
  return inv;
}

describe("buildProbePlan all-pods", () => {
  it.each([
    [1, 1, false, 0],
    [1, 2, false, 2],
    [3, 2, false, 30],
    [3, 20, false, 3540],
    [2, 2, true, 24],
  ])("%i nodes x %i pods (dual %s) -> %i pairs", (nodes, pods, dual, expected) => {
    const plan = buildProbePlan(inventory(nodes, pods, dual), { mode: "all-pods" });
    expect(plan.pairs).toHaveLength(expected);
    expect(new Set(plan.pairs.map((p) => p.id)).size).toBe(expected);
    expect(plan.pairs.every((p) => p.src.pod !== p.dst.pod)).toBe(true);
  });

  it("marks same-node and cross-node and uses the pair family's addresses", () => {
    const plan = buildProbePlan(inventory(2, 1, true), { mode: "all-pods" });
    expect(plan.pairs.map((p) => [p.id, p.path, p.src.ip, p.dst.ip])).toEqual([
      ["pod-1-0>pod-2-0/IPv4", "cross-node", "10.244.1.2", "10.244.2.2"],
      ["pod-2-0>pod-1-0/IPv4", "cross-node", "10.244.2.2", "10.244.1.2"],
      ["pod-1-0>pod-2-0/IPv6", "cross-node", "fd00:10:244:1::2", "fd00:10:244:2::2"],
      ["pod-2-0>pod-1-0/IPv6", "cross-node", "fd00:10:244:2::2", "fd00:10:244:1::2"],
    ]);
  });

  it("keeps pairs of a not-Ready node and pod with the reason, and lists the exclusions", () => {
    const inv = inventory(3, 1);
    inv.nodes[1]!.ready = false;
    inv.pods.push({ name: "late", node: "node-1", ips: ["10.244.1.9"], ready: false });
    const plan = buildProbePlan(inv, { mode: "all-pods" });
    expect(plan.excluded).toEqual([
      { kind: "node", name: "node-2", reason: "node node-2 is not Ready" },
      { kind: "pod", name: "late", node: "node-1", reason: "pod late is not Ready" },
    ]);
    const excluded = plan.pairs.filter((p) => p.excluded !== undefined).map((p) => p.id).sort();
    expect(excluded).toEqual([
      "late>pod-1-0/IPv4", "late>pod-2-0/IPv4", "late>pod-3-0/IPv4",
      "pod-1-0>late/IPv4", "pod-1-0>pod-2-0/IPv4", "pod-2-0>late/IPv4", "pod-2-0>pod-1-0/IPv4",
      "pod-2-0>pod-3-0/IPv4", "pod-3-0>late/IPv4", "pod-3-0>pod-2-0/IPv4",
    ]);
    expect(plan.pairs.filter((p) => p.excluded === undefined).map((p) => p.id).sort()).toEqual(["pod-1-0>pod-3-0/IPv4", "pod-3-0>pod-1-0/IPv4"]);
  });

  it("restricts to the requested families and skips pods without an address of the family", () => {
    const inv = inventory(2, 1, true);
    inv.pods.push({ name: "v4only", node: "node-2", ips: ["10.244.2.50"] });
    const plan = buildProbePlan(inv, { mode: "all-pods", families: ["IPv6"] });
    expect(plan.families).toEqual(["IPv6"]);
    expect(plan.pairs.map((p) => p.id)).toEqual(["pod-1-0>pod-2-0/IPv6", "pod-2-0>pod-1-0/IPv6"]);
  });
});

describe("buildProbePlan node-pairs", () => {
  it.each([
    [2, 10, 1],
    [5, 2, 2],
    [12, 4, 4],
    [12, 50, 11],
  ])("%i nodes, cap %i: every node probes and is probed by %i peers", (nodes, cap, expected) => {
    const plan = buildProbePlan(inventory(nodes, 2), { mode: "node-pairs", peersPerNode: cap });
    expect(plan.peersPerNode).toBe(expected);
    const cross = plan.pairs.filter((p) => p.path === "cross-node");
    const inbound = new Map<string, number>();
    const outbound = new Map<string, number>();
    for (const p of cross) {
      inbound.set(p.dst.node, (inbound.get(p.dst.node) ?? 0) + 1);
      outbound.set(p.src.node, (outbound.get(p.src.node) ?? 0) + 1);
    }
    expect([...inbound.values()]).toEqual(Array(nodes).fill(expected));
    expect([...outbound.values()]).toEqual(Array(nodes).fill(expected));
    expect(plan.pairs.filter((p) => p.path === "same-node")).toHaveLength(nodes);
  });

  it("prefers a Ready pod as a node's responder", () => {
    const inv = inventory(2, 2);
    inv.pods[0]!.ready = false;
    const plan = buildProbePlan(inv, { mode: "node-pairs" });
    expect(plan.pairs.filter((p) => p.path === "cross-node").map((p) => p.id)).toEqual(["pod-1-1>pod-2-0/IPv4", "pod-2-0>pod-1-1/IPv4"]);
  });
});

describe("pairId", () => {
  it("includes namespaces when set", () => {
    expect(pairId({ pod: "a", namespace: "x" }, { pod: "b" }, "IPv6")).toBe("x/a>b/IPv6");
  });
});
