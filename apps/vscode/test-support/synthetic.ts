/**
 * Deterministic synthetic clusters and probe runs, for tests, benchmarks and the recorded fixtures.
 * Faults are injected by name so a test can say what it expects to see.
 */
import type { PairResult, ProbeEvent, ProbePair, ProbeReport, TraceHop } from "@flatnet/core";
import type { ClusterView, PodView } from "../src/model/cluster-view.ts";

export interface SyntheticOptions {
  nodes: number;
  podsPerNode: number;
  name?: string;
  dualStack?: boolean;
}

/** node i gets 10.244.i.0/24 (and fd00:10:244:i::/64); pods are .10, .11, ... */
export function makeSyntheticCluster(options: SyntheticOptions): ClusterView {
  const name = options.name ?? `synthetic-${options.nodes}`;
  const nodes = Array.from({ length: options.nodes }, (_, i) => {
    const third = i % 256;
    const second = 244 + Math.floor(i / 256);
    return {
      name: `node-${i + 1}`,
      internalIps: [`172.31.${Math.floor(i / 250)}.${(i % 250) + 2}`],
      podCidrs: [`10.${second}.${third}.0/24`, ...(options.dualStack ? [`fd00:10:${second.toString(16)}:${third.toString(16)}::/64`] : [])],
      backend: "vxlan",
      agent: "healthy" as const,
      ready: true,
    };
  });
  const pods: PodView[] = [];
  nodes.forEach((node, i) => {
    const base = node.podCidrs[0]!.split(".").slice(0, 3).join(".");
    for (let p = 0; p < options.podsPerNode; p++) {
      const ips = [`${base}.${10 + p}`];
      if (options.dualStack) ips.push(`${node.podCidrs[1]!.split("::")[0]}::${(10 + p).toString(16)}`);
      pods.push({ namespace: "default", name: `pod-${i + 1}-${p + 1}`, node: node.name, ips, phase: "Running", hostNetwork: false });
    }
  });
  return { id: `fixture:${name}`, name, source: "fixture", clusterCidrs: ["10.244.0.0/16"], nodes, pods, status: { state: "ready" } };
}

export type Fault = { kind: "nat" | "unreachable" | "mtu" | "loss" | "flaky"; src: string; dst: string; message?: string };

const OPTIONS = { udpCount: 3, tcpCount: 1, mtuTcpBytes: 65536, podMtu: 1450, timeoutMs: 1000, retries: 2, concurrency: 64 };

/** One probe per ordered node pair (first pod of each node), with faults applied to the named node pairs. */
export function makeSyntheticRun(cluster: ClusterView, faults: readonly Fault[] = [], runId = "run-1"): ProbeEvent[] {
  const first = new Map<string, PodView>();
  for (const pod of cluster.pods) if (!first.has(pod.node)) first.set(pod.node, pod);
  const endpoints = [...first.values()];
  const pairs: ProbePair[] = [];
  for (const src of endpoints) {
    for (const dst of endpoints) {
      if (src === dst) continue;
      pairs.push({
        id: `${src.name}>${dst.name}/IPv4`,
        src: { pod: src.name, namespace: src.namespace, node: src.node, ip: src.ips[0]!, port: 7471 },
        dst: { pod: dst.name, namespace: dst.namespace, node: dst.node, ip: dst.ips[0]!, port: 7471 },
        family: "IPv4",
        path: src.node === dst.node ? "same-node" : "cross-node",
      });
    }
  }
  const startedAt = "2026-11-26T06:00:00.000Z";
  const plan = { mode: "node-pairs" as const, families: ["IPv4" as const], pairs, excluded: [] };
  const cl = { name: cluster.name, source: cluster.source };
  const events: ProbeEvent[] = [{ v: 1, type: "run-started", runId, startedAt, cluster: cl, options: OPTIONS, plan }];
  const results: PairResult[] = pairs.map((pair, index) => {
    const fault = faults.find((f) => f.src === pair.src.node && f.dst === pair.dst.node);
    const rtt = { samples: 4, p50Ms: 0.05 + ((index * 37) % 100) / 100, p99Ms: 0.2 + ((index * 37) % 100) / 50 };
    const result: PairResult = { pair, verdict: "ok", attempts: 1, problems: [], nat: { verdict: "nat-free", observedSrc: pair.src.ip, expectedSrc: pair.src.ip }, rtt, udpLossRatio: 0, diagnosis: [] };
    switch (fault?.kind) {
      case "nat":
        return { ...result, verdict: "failed", problems: ["nat-violation"], nat: { verdict: "snat-to-node-ip", observedSrc: "172.31.0.2", expectedSrc: pair.src.ip }, diagnosis: [{ code: "snat-rule", node: pair.src.node, message: fault.message ?? `${pair.src.node} masquerades pod traffic to the cluster CIDR` }] };
      case "unreachable": {
        const { rtt: _rtt, ...rest } = result;
        return { ...rest, verdict: "failed", attempts: 3, problems: ["tcp-unreachable", "udp-unreachable"], nat: { verdict: "unknown", expectedSrc: pair.src.ip }, udpLossRatio: 1, error: "connect ETIMEDOUT", diagnosis: [{ code: "missing-route", node: pair.src.node, message: fault.message ?? `${pair.src.node} has no route to ${pair.dst.ip.split(".").slice(0, 3).join(".")}.0/24` }] };
      }
      case "mtu":
        return { ...result, verdict: "failed", problems: ["mtu-tcp-blackhole"], mtu: { tcpBytes: 65536, tcpOk: false, udpBytes: 1422, udpOk: false }, diagnosis: [{ code: "mtu-below-pod-mtu", node: pair.src.node, message: fault.message ?? `underlay MTU is below the pod MTU 1450` }] };
      case "loss":
        return { ...result, verdict: "failed", problems: ["udp-loss"], udpLossRatio: 0.33, diagnosis: [{ code: "unexplained", message: fault.message ?? "one of three UDP echoes was lost" }] };
      case "flaky":
        return { ...result, verdict: "flaky", attempts: 2 };
      default:
        return result;
    }
  });
  results.forEach((result, index) => events.push({ v: 1, type: "pair-result", runId, result, final: true, progress: { done: index + 1, total: results.length } }));
  const count = (verdict: string) => results.filter((r) => r.verdict === verdict).length;
  const natViolations = results.filter((r) => r.problems.includes("nat-violation")).length;
  const report: ProbeReport = {
    v: 1,
    kind: "flatnet-probe-report",
    runId,
    cluster: cl,
    startedAt,
    finishedAt: "2026-11-26T06:00:01.000Z",
    options: OPTIONS,
    plan,
    results,
    ledger: [],
    nodeDiagnosis: [],
    summary: {
      pairs: results.length,
      ok: count("ok"),
      flaky: count("flaky"),
      failed: count("failed"),
      inconclusive: count("inconclusive"),
      excluded: 0,
      natViolations,
      mtuFailures: results.filter((r) => r.problems.some((p) => p.startsWith("mtu"))).length,
      ledgerFindings: 0,
      durationMs: 1000,
      line: `${count("failed")}/${results.length} pairs failed (${natViolations} NAT violations), 0 excluded`,
    },
  };
  events.push({ v: 1, type: "run-finished", runId, report });
  return events;
}

const traceHop = (node: string, role: TraceHop["role"], direction: TraceHop["direction"], decision: string, status: TraceHop["status"] = "ok", findings: string[] = []): TraceHop => ({
  node,
  role,
  direction,
  packet: direction === "forward" ? { src: "10.244.1.2", dst: "10.244.2.2" } : { src: "10.244.2.2", dst: "10.244.1.2" },
  decision,
  status,
  findings,
});

/** A traced failed pair pod-1-0 (node-1) -> pod-2-0 (node-2): someone added a blackhole route to the destination pod in node-2. */
export function makeSyntheticTracedPair(): PairResult {
  return {
    pair: {
      id: "pod-1-0>pod-2-0/IPv4",
      src: { pod: "pod-1-0", namespace: "default", node: "node-1", ip: "10.244.1.2", port: 7471 },
      dst: { pod: "pod-2-0", namespace: "default", node: "node-2", ip: "10.244.2.2", port: 7471 },
      family: "IPv4",
      path: "cross-node",
    },
    verdict: "failed",
    attempts: 2,
    problems: ["tcp-unreachable", "udp-loss"],
    nat: { verdict: "unknown", expectedSrc: "10.244.1.2" },
    diagnosis: [
      { code: "blackhole-route", node: "node-2", message: "node-2: route blackhole 10.244.2.2 drops packets to pod-2-0", fix: "ip route del blackhole 10.244.2.2" },
      { code: "agent-unreachable", node: "node-3", message: "node-3: the agent did not answer" },
    ],
    hops: [
      traceHop("node-1", "src-node", "forward", "via 172.31.0.12 dev eth0"),
      traceHop("underlay", "underlay", "forward", "bridged"),
      traceHop("node-2", "dst-node", "forward", "blackhole", "broken", ["blackhole-route"]),
      traceHop("node-2", "dst-node", "reply", "via 172.31.0.11 dev eth0", "unknown"),
      traceHop("node-1", "src-node", "reply", "dev fn-br0", "unknown"),
    ],
  };
}
