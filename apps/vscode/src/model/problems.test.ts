import { describe, expect, it } from "vitest";
import type { ClusterView } from "./cluster-view.ts";
import { findInventoryProblems, findProbeProblems } from "./problems.ts";
import { makeSyntheticCluster, makeSyntheticRun } from "../../test-support/synthetic.ts";

function cluster(overrides: Partial<ClusterView>): ClusterView {
  return {
    id: "fixture:t",
    name: "t",
    source: "fixture",
    clusterCidrs: ["10.244.0.0/16"],
    nodes: [
      { name: "n1", internalIps: ["172.31.0.2"], podCidrs: ["10.244.1.0/24", "fd00:1::/64"], agent: "healthy", ready: true },
      { name: "n2", internalIps: ["172.31.0.3"], podCidrs: ["10.244.2.0/24"], agent: "healthy", ready: true },
    ],
    pods: [],
    ...overrides,
  };
}

const pod = (name: string, node: string, ips: string[], hostNetwork = false) => ({ namespace: "default", name, node, ips, phase: "Running", hostNetwork });

describe("findInventoryProblems", () => {
  it.each([
    ["IPv4 inside its CIDR", [pod("a", "n1", ["10.244.1.10"])], []],
    ["IPv6 inside its CIDR", [pod("a", "n1", ["fd00:1::a"])], []],
    ["IPv4-mapped IPv6 inside", [pod("a", "n1", ["::ffff:10.244.1.9"])], []],
    ["last address of the CIDR", [pod("a", "n1", ["10.244.1.255"])], []],
    ["hostNetwork pods are exempt", [pod("h", "n1", ["172.31.0.2"], true), pod("h2", "n2", ["172.31.0.2"], true)], []],
    ["IPv4 in another node's CIDR", [pod("a", "n1", ["10.244.2.10"])], ["ip-outside-cidr"]],
    ["first address after the CIDR", [pod("a", "n1", ["10.244.2.0"])], ["ip-outside-cidr"]],
    ["IPv6 but node n2 has only IPv4", [pod("a", "n2", ["fd00:1::a"])], ["ip-outside-cidr"]],
    ["pod on an unknown node", [pod("a", "ghost", ["10.244.1.10"])], ["ip-outside-cidr"]],
    ["duplicate IP across nodes", [pod("a", "n1", ["10.244.1.10"]), pod("b", "n2", ["10.244.1.10"])], ["ip-outside-cidr", "duplicate-ip"]],
    ["duplicate IP written two ways", [pod("a", "n1", ["fd00:1::a"]), pod("b", "n1", ["fd00:1:0:0::A"])], ["duplicate-ip"]],
    ["garbage IP", [pod("a", "n1", ["10.244.1.300"])], ["invalid-address"]],
    ["IPv4 with a leading zero (octal to some parsers)", [pod("a", "n1", ["010.244.1.10"])], ["invalid-address"]],
    ["IPv4-mapped duplicate of an IPv4 pod IP", [pod("a", "n1", ["10.244.1.10"]), pod("b", "n1", ["::ffff:10.244.1.10"])], ["duplicate-ip"]],
  ])("%s", (_name, pods, kinds) => {
    expect(findInventoryProblems(cluster({ pods })).map((problem) => problem.kind)).toEqual(kinds);
  });

  it("reports overlapping node CIDRs, an invalid CIDR and a down agent", () => {
    const problems = findInventoryProblems(
      cluster({
        nodes: [
          { name: "n1", internalIps: [], podCidrs: ["10.244.0.0/23"], agent: "healthy", ready: true },
          { name: "n2", internalIps: [], podCidrs: ["10.244.1.0/24", "10.244.9.0/33"], agent: "down", ready: true },
        ],
      }),
    );
    expect(problems.map(({ kind, message }) => ({ kind, message }))).toEqual([
      { kind: "invalid-address", message: 'node n2 has pod CIDR "10.244.9.0/33", which is not a valid CIDR' },
      { kind: "agent-down", message: "the flatnet agent on n2 does not answer" },
      { kind: "cidr-overlap", message: "pod CIDR 10.244.0.0/23 of n1 overlaps 10.244.1.0/24 of n2" },
    ]);
  });

  it("finds nothing in a healthy 50-node cluster", () => {
    expect(findInventoryProblems(makeSyntheticCluster({ nodes: 50, podsPerNode: 3, dualStack: true }))).toEqual([]);
  });
});

describe("findProbeProblems", () => {
  it("turns NAT, unreachable and MTU faults into problems and ignores flaky pairs", () => {
    const view = makeSyntheticCluster({ nodes: 3, podsPerNode: 1 });
    const events = makeSyntheticRun(view, [
      { kind: "nat", src: "node-1", dst: "node-2" },
      { kind: "unreachable", src: "node-2", dst: "node-3" },
      { kind: "mtu", src: "node-3", dst: "node-1" },
      { kind: "flaky", src: "node-1", dst: "node-3" },
    ]);
    const last = events.at(-1)!;
    if (last.type !== "run-finished") throw new Error("synthetic run must end with run-finished");
    const problems = findProbeProblems(last.report.results);
    expect(problems.map(({ kind, pairId }) => ({ kind, pairId }))).toEqual([
      { kind: "nat-violation", pairId: "pod-1-1>pod-2-1/IPv4" },
      { kind: "unreachable-pair", pairId: "pod-2-1>pod-3-1/IPv4" },
      { kind: "mtu-blackhole", pairId: "pod-3-1>pod-1-1/IPv4" },
    ]);
    expect(problems[0]!.message).toBe(
      "pod-1-1 (node-1, 10.244.0.10) -> pod-2-1 (node-2, 10.244.1.10) IPv4: the receiver saw 172.31.0.2, not 10.244.0.10: node-1 masquerades pod traffic to the cluster CIDR",
    );
    expect(problems[1]!.message).toBe("pod-2-1 (node-2, 10.244.1.10) -> pod-3-1 (node-3, 10.244.2.10) IPv4 is unreachable: node-2 has no route to 10.244.2.0/24");
  });
});
