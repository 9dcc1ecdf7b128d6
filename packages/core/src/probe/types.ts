/**
 * Probe protocol and report types: the contract between the responder, the engine, `flatnet check` and the
 * VS Code extension. Plain data only (JSON on the wire); zod schemas for the boundary live in ./schema.ts.
 */

// Same spelling as core/src/ip's IpFamily (Kubernetes' spelling); kept local so this file stands alone.
type Family = "IPv4" | "IPv6";

/** Version of the probe wire protocol and of the report/event documents. */
export const PROBE_PROTOCOL_VERSION = 1 as const;

/** Default TCP and UDP port of a probe responder (both transports share the number). */
export const DEFAULT_PROBE_PORT = 7471;

/** Whether a pair's two pods share a node. */
export type PathKind = "same-node" | "cross-node";

/**
 * What a probe endpoint is: a pod (in the pod network), or a node itself (its host network: the agent's
 * responder on the node's underlay IPs). Absent means `pod` (reports from before node endpoints existed).
 */
export type EndpointKind = "pod" | "node";

/** Name of a node's own endpoint in pair ids and `pod` fields: `node:<name>` (a node name cannot contain ':'). */
export const nodeEndpointName = (node: string): string => `node:${node}`;

/** What a responder says about itself in every reply. */
export interface ResponderIdentity {
  /** The pod's name, or `node:<name>` for a node's own responder (in the agent). */
  pod: string;
  /** `node` for a node's own responder; absent for a pod. */
  kind?: EndpointKind;
  namespace?: string;
  node: string;
  podIps: string[];
  /** The pod CIDRs of the responder's node, as the responder was told at start. */
  nodePodCidrs: string[];
  /** The node's own addresses (underlay / InternalIP), used to tell `snat-to-node-ip` apart. */
  nodeIps?: string[];
}

/** The reply of a responder to one echo (TCP/HTTP `POST /v1/echo` or one UDP datagram). */
export interface EchoReply {
  v: typeof PROBE_PROTOCOL_VERSION;
  probeId: string;
  seq: number;
  transport: "tcp" | "udp";
  /** Source address and port the responder saw (what the network delivered, after any NAT). */
  observedSrc: { ip: string; port: number };
  /** Destination address the packet arrived at inside the responder (detects DNAT); "" when the transport cannot tell. */
  localDst: { ip: string; port: number };
  responder: ResponderIdentity;
  /** Payload bytes received (the large-transfer MTU check compares it with what was sent). */
  bytesReceived: number;
}

/** One pod (or node) that can send or answer probes. */
export interface ProbeEndpoint {
  /** The pod's name, or `node:<name>` for a node endpoint. */
  pod: string;
  namespace?: string;
  node: string;
  /** The address probed (dst) or expected as source (src), in the pair's family. */
  ip: string;
  port: number;
  /** `node`: the node's own responder (host network); absent: a pod. */
  kind?: EndpointKind;
  /**
   * Node endpoints only: every source address the node's own packets may legitimately show at a remote pod, in
   * the pair's family: the node's underlay IPs (host-gw: the route's device is the underlay) and its own addresses
   * inside its pod CIDRs (the pod bridge's gateway, a VTEP address), whichever the kernel's source selection picks.
   */
  sourceIps?: string[];
}

/** One ordered pair and family to probe. `id` is stable across runs: `src>dst/family`. */
export interface ProbePair {
  id: string;
  src: ProbeEndpoint;
  dst: ProbeEndpoint;
  family: Family;
  path: PathKind;
  /** Set when the pair is planned but not probed (a pod or node not Ready): the reason. */
  excluded?: string;
  /** `node-pod` (a node's own traffic to a remote pod) or `pod-node` (a pod to a remote node); absent: pod to pod. */
  kind?: "pod-pod" | "node-pod" | "pod-node";
}

/** A pod or node left out of the plan, and why (not Ready, cordoned, no responder). */
export interface ExcludedTarget {
  kind: "pod" | "node";
  name: string;
  node?: string;
  reason: string;
}

/** The set of pairs one run probes. */
export interface ProbePlan {
  /** `all-pods`: every ordered pod pair; `node-pairs`: one responder per node, each node probed by `peersPerNode` peers. */
  mode: "all-pods" | "node-pairs";
  families: Family[];
  pairs: ProbePair[];
  excluded: ExcludedTarget[];
  peersPerNode?: number;
}

/** Options of the checks made per pair. */
export interface ProbeOptions {
  /** UDP echo datagrams per pair (loss and RTT samples). */
  udpCount: number;
  /** TCP echo requests per pair (RTT samples); the first also checks NAT and identity. */
  tcpCount: number;
  /**
   * Bytes of the large TCP transfer (MTU black-hole check); 0 disables it. Anything over one MSS sends full-size
   * DF segments, which a black hole drops: 16 KiB (~11 segments) detects it at a quarter of 64 KiB's cost.
   */
  mtuTcpBytes: number;
  /** Pod MTU: the UDP MTU check sends one datagram of `podMtu - 28` (IPv4) / `- 48` (IPv6) bytes; 0 disables it. */
  podMtu: number;
  /** Per-probe timeout in milliseconds. */
  timeoutMs: number;
  /** Retries of failed pairs after the first pass. */
  retries: number;
  /**
   * Pairs dialled at once by one source responder. Small on purpose: with every source at once, 4 keeps a few
   * hundred pairs in flight, so a timeout measures the exchange and not a queue (60 pods: 4 gives the fewest retries).
   */
  concurrency: number;
}

export const DEFAULT_PROBE_OPTIONS: ProbeOptions = {
  udpCount: 3,
  tcpCount: 1,
  mtuTcpBytes: 16384,
  podMtu: 0,
  timeoutMs: 1000,
  retries: 2,
  concurrency: 4,
};

/** How the source address the responder saw compares with the sender's pod IP. */
export type NatVerdict =
  | "nat-free" // observed source == sender's pod IP (after unmapping ::ffff:a.b.c.d)
  | "snat-to-node-ip" // observed source is one of the sender node's own addresses
  | "snat-other" // observed source is something else
  | "unknown"; // no reply carried an observed source

/** The raw outcome of one attempt at one pair, as the source responder measured it. */
export interface DialResult {
  pairId: string;
  /** False when the control path failed (source responder or its agent unreachable): the data path is unknown. */
  controlOk: boolean;
  controlError?: string;
  /**
   * `rttMs`: request/response times on an established connection (the handshake is not in them);
   * `connectMs`: the TCP handshake alone, reported apart.
   */
  tcp?: { ok: boolean; rttMs: number[]; connectMs?: number; error?: string; reply?: EchoReply };
  udp?: { sent: number; received: number; rttMs: number[]; error?: string; reply?: EchoReply };
  mtu?: {
    tcpBytes: number;
    tcpOk?: boolean;
    tcpError?: string;
    udpBytes: number;
    udpOk?: boolean;
    udpError?: string;
  };
}

/** Per-pair verdict. `flaky` passed on a retry (`attempts - 1` retries); `inconclusive`: the control path failed. */
export type PairVerdict = "ok" | "flaky" | "failed" | "inconclusive" | "excluded";

/** Named failure reasons of one pair (what failed, not why: the why is in `diagnosis`). */
export type PairProblem =
  | "tcp-unreachable"
  | "udp-loss"
  | "udp-unreachable"
  | "nat-violation"
  | "dnat"
  | "wrong-responder"
  | "mtu-tcp-blackhole"
  | "mtu-udp-blackhole"
  | "control-path";

/** One explained cause, from the agents' own state (routes, neighbours, FDB, CIDRs, NAT rules). */
export interface Diagnosis {
  code:
    | "missing-route"
    | "wrong-route"
    | "pod-ip-outside-cidr"
    | "stale-vtep-mac"
    | "missing-vtep-neighbour"
    | "missing-fdb"
    | "stale-neighbour"
    | "neighbour-table-full"
    | "mtu-below-pod-mtu"
    | "snat-rule"
    | "dnat-rule"
    | "conntrack-nat"
    | "drop-rule"
    | "agent-unreachable"
    | "node-not-ready"
    | "duplicate-ip"
    | "blackhole-route"
    | "policy-rule"
    | "foreign-route"
    | "forwarding-disabled"
    | "rp-filter"
    | "chain-policy-drop"
    | "link-down"
    | "neighbour-failed"
    | "wrong-fdb"
    | "pod-port-detached"
    | "bridge-port-isolated"
    | "pod-route-missing"
    | "responder-down"
    | "route-lookup-failed"
    | "unexplained";
  /** The node whose state shows the cause. */
  node?: string;
  /** One sentence for a human: `node-1 has no route to 10.244.3.0/24`. */
  message: string;
  /** The command (or action) that would remove the cause: offered as text, never run. */
  fix?: string;
  details?: Record<string, unknown>;
}

/** One place a packet of a pair passes, with what that kernel would do with it (the path tracer's hop). */
export interface TraceHop {
  /** Node (or underlay / router) name. */
  node: string;
  role: "src-node" | "underlay" | "dst-node";
  direction: "forward" | "reply";
  packet: { src: string; dst: string };
  /** The route question asked there: `ip route get DST from FROM iif IIF`; `iifOf`: iif is the device towards that address. */
  query?: { dst: string; from?: string; iif?: string; iifOf?: string; mark?: number };
  /** `via 172.31.0.12 dev eth0`, `bridged`, or the kernel's error. */
  decision: string;
  status: "ok" | "broken" | "unknown";
  /** Codes of the findings placed at this hop. */
  findings: string[];
}

/** RTT statistics of one pair over all successful samples (TCP request and UDP echo). */
export interface RttSummary {
  samples: number;
  p50Ms: number;
  p99Ms: number;
}

/** The final result of one pair. */
export interface PairResult {
  pair: ProbePair;
  verdict: PairVerdict;
  /** Attempts made (1 = first pass only). A `flaky` pair has passed on attempt `attempts`. */
  attempts: number;
  problems: PairProblem[];
  /**
   * `expectedSrc`: the sender's address in the pair's family. For a node sender, `expectedSrcs` lists every
   * accepted source (its `sourceIps`); `expectedSrc` is the first of them.
   */
  nat: { verdict: NatVerdict; observedSrc?: string; expectedSrc: string; expectedSrcs?: string[] };
  rtt?: RttSummary;
  udpLossRatio?: number;
  mtu?: { tcpBytes: number; tcpOk?: boolean; udpBytes: number; udpOk?: boolean };
  /** Error text of the last failed attempt. */
  error?: string;
  diagnosis: Diagnosis[];
  /** The path tracer's hops of a failed pair (forward, then reply), when evidence was gathered. */
  hops?: TraceHop[];
}

/** IPAM ledger inconsistencies (issue 6.5). */
export interface LedgerFinding {
  code: "allocation-without-pod" | "pod-ip-not-in-ledger" | "duplicate-ip" | "pod-ip-outside-cidr";
  ip: string;
  nodes: string[];
  pod?: string;
  message: string;
}

/** Counts of a run; `line` is the console summary `N/M pairs failed (k NAT violations), x excluded`. */
export interface ProbeSummary {
  pairs: number;
  ok: number;
  flaky: number;
  failed: number;
  inconclusive: number;
  excluded: number;
  natViolations: number;
  mtuFailures: number;
  ledgerFindings: number;
  durationMs: number;
  line: string;
}

/** The whole report of one run (`flatnet check --json`). */
export interface ProbeReport {
  v: typeof PROBE_PROTOCOL_VERSION;
  kind: "flatnet-probe-report";
  runId: string;
  cluster: { name: string; source: "lab" | "kubernetes" | "fixture" };
  startedAt: string;
  finishedAt: string;
  options: ProbeOptions;
  plan: ProbePlan;
  results: PairResult[];
  ledger: LedgerFinding[];
  /** Node-level findings not tied to one pair (e.g. an agent that did not answer). */
  nodeDiagnosis: Diagnosis[];
  summary: ProbeSummary;
}

/**
 * The streamed events of one run (NDJSON, one per line). `pair-result` arrives once per attempt: a later
 * event for the same `pair.id` replaces the earlier one; `final` says no retry will follow.
 */
export type ProbeEvent =
  | { v: 1; type: "run-started"; runId: string; startedAt: string; cluster: ProbeReport["cluster"]; options: ProbeOptions; plan: ProbePlan }
  | { v: 1; type: "pair-result"; runId: string; result: PairResult; final: boolean; progress: { done: number; total: number } }
  | { v: 1; type: "retry-started"; runId: string; pairs: string[]; attempt: number }
  | { v: 1; type: "run-finished"; runId: string; report: ProbeReport }
  | { v: 1; type: "run-failed"; runId: string; error: { code: string; message: string } };

/** One destination a source responder dials for one pair. */
export interface DialTarget {
  pairId: string;
  ip: string;
  port: number;
}

/** `POST /v1/dial` to a source pod's responder (directly or relayed by its node's agent); answered by NDJSON `DialResult`s. */
export interface DialRequest {
  v: typeof PROBE_PROTOCOL_VERSION;
  runId: string;
  options: ProbeOptions;
  targets: DialTarget[];
}
