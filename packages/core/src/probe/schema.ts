import { z } from "zod";
import type { DialRequest, DialResult, EchoReply, ProbeEvent, ProbeReport } from "./types.ts";

// Boundary schemas for the probe wire documents: NDJSON events, the report, responder replies.

const family = z.enum(["IPv4", "IPv6"]);

const endpointKind = z.enum(["pod", "node"]);

const responderIdentity = z.object({
  pod: z.string(),
  kind: endpointKind.optional(),
  namespace: z.string().optional(),
  node: z.string(),
  podIps: z.array(z.string()),
  nodePodCidrs: z.array(z.string()),
  nodeIps: z.array(z.string()).optional(),
});

/** Schema of a responder's echo reply. */
export const echoReplySchema = z.object({
  v: z.literal(1),
  probeId: z.string(),
  seq: z.number().int(),
  transport: z.enum(["tcp", "udp"]),
  observedSrc: z.object({ ip: z.string(), port: z.number().int() }),
  localDst: z.object({ ip: z.string(), port: z.number().int() }),
  responder: responderIdentity,
  bytesReceived: z.number().int().nonnegative(),
}) satisfies z.ZodType<EchoReply>;

const endpoint = z.object({
  pod: z.string(),
  namespace: z.string().optional(),
  node: z.string(),
  ip: z.string(),
  port: z.number().int().min(1).max(65535),
  kind: endpointKind.optional(),
  sourceIps: z.array(z.string()).optional(),
});

/** Schema of one ordered pair. */
export const probePairSchema = z.object({
  id: z.string(),
  src: endpoint,
  dst: endpoint,
  family,
  path: z.enum(["same-node", "cross-node"]),
  excluded: z.string().optional(),
  kind: z.enum(["pod-pod", "node-pod", "pod-node"]).optional(),
});

const plan = z.object({
  mode: z.enum(["all-pods", "node-pairs"]),
  families: z.array(family),
  pairs: z.array(probePairSchema),
  excluded: z.array(
    z.object({ kind: z.enum(["pod", "node"]), name: z.string(), node: z.string().optional(), reason: z.string() }),
  ),
  peersPerNode: z.number().int().optional(),
});

/** Largest TCP transfer of the MTU check (`mtuTcpBytes`): 64 KiB. */
export const MAX_PROBE_TRANSFER_BYTES = 64 * 1024;
/** Largest pod MTU a probe fills a datagram to: a jumbo frame. */
export const MAX_PROBE_POD_MTU = 9216;
/** Most targets of one dial request: twice Kubernetes' 5,000-node limit (a responder pod and a node endpoint per node). */
export const MAX_DIAL_TARGETS = 10_000;

/** Schema of the per-run probe options; every field is bounded so a request cannot ask for absurd work. */
export const probeOptionsSchema = z.object({
  udpCount: z.number().int().min(0).max(100),
  tcpCount: z.number().int().min(0).max(100),
  // Bounded so that no request turns into an amplifier: 64 KiB per transfer, a jumbo frame at most per datagram.
  mtuTcpBytes: z.number().int().min(0).max(MAX_PROBE_TRANSFER_BYTES),
  podMtu: z.number().int().refine((mtu) => mtu === 0 || (mtu >= 68 && mtu <= MAX_PROBE_POD_MTU), `must be 0 (no UDP MTU check) or 68-${MAX_PROBE_POD_MTU}`),
  timeoutMs: z.number().int().min(10).max(60_000),
  retries: z.number().int().min(0).max(5),
  concurrency: z.number().int().min(1).max(1024),
});

const diagnosis = z.object({
  code: z.enum([
    "missing-route",
    "wrong-route",
    "pod-ip-outside-cidr",
    "stale-vtep-mac",
    "missing-vtep-neighbour",
    "missing-fdb",
    "stale-neighbour",
    "neighbour-table-full",
    "mtu-below-pod-mtu",
    "snat-rule",
    "dnat-rule",
    "conntrack-nat",
    "drop-rule",
    "agent-unreachable",
    "node-not-ready",
    "duplicate-ip",
    "blackhole-route",
    "policy-rule",
    "foreign-route",
    "forwarding-disabled",
    "rp-filter",
    "chain-policy-drop",
    "link-down",
    "neighbour-failed",
    "wrong-fdb",
    "pod-port-detached",
    "bridge-port-isolated",
    "pod-route-missing",
    "responder-down",
    "route-lookup-failed",
    "unexplained",
  ]),
  node: z.string().optional(),
  message: z.string(),
  fix: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

const traceHop = z.object({
  node: z.string(),
  role: z.enum(["src-node", "underlay", "dst-node"]),
  direction: z.enum(["forward", "reply"]),
  packet: z.object({ src: z.string(), dst: z.string() }),
  query: z.object({ dst: z.string(), from: z.string().optional(), iif: z.string().optional(), iifOf: z.string().optional(), mark: z.number().optional() }).optional(),
  decision: z.string(),
  status: z.enum(["ok", "broken", "unknown"]),
  findings: z.array(z.string()),
});

const pairResult = z.object({
  pair: probePairSchema,
  verdict: z.enum(["ok", "flaky", "failed", "inconclusive", "excluded"]),
  attempts: z.number().int().min(0),
  problems: z.array(
    z.enum([
      "tcp-unreachable",
      "udp-loss",
      "udp-unreachable",
      "nat-violation",
      "dnat",
      "wrong-responder",
      "mtu-tcp-blackhole",
      "mtu-udp-blackhole",
      "control-path",
    ]),
  ),
  nat: z.object({
    verdict: z.enum(["nat-free", "snat-to-node-ip", "snat-other", "unknown"]),
    observedSrc: z.string().optional(),
    expectedSrc: z.string(),
    expectedSrcs: z.array(z.string()).optional(),
  }),
  rtt: z.object({ samples: z.number(), p50Ms: z.number(), p99Ms: z.number() }).optional(),
  udpLossRatio: z.number().optional(),
  mtu: z
    .object({ tcpBytes: z.number(), tcpOk: z.boolean().optional(), udpBytes: z.number(), udpOk: z.boolean().optional() })
    .optional(),
  error: z.string().optional(),
  diagnosis: z.array(diagnosis),
  hops: z.array(traceHop).optional(),
});

const ledgerFinding = z.object({
  code: z.enum(["allocation-without-pod", "pod-ip-not-in-ledger", "duplicate-ip", "pod-ip-outside-cidr"]),
  ip: z.string(),
  nodes: z.array(z.string()),
  pod: z.string().optional(),
  message: z.string(),
});

const cluster = z.object({ name: z.string(), source: z.enum(["lab", "kubernetes", "fixture"]) });

/** Schema of the report document (`flatnet check --json`). */
export const probeReportSchema = z.object({
  v: z.literal(1),
  kind: z.literal("flatnet-probe-report"),
  runId: z.string(),
  cluster,
  startedAt: z.string(),
  finishedAt: z.string(),
  options: probeOptionsSchema,
  plan,
  results: z.array(pairResult),
  ledger: z.array(ledgerFinding),
  nodeDiagnosis: z.array(diagnosis),
  summary: z.object({
    pairs: z.number(),
    ok: z.number(),
    flaky: z.number(),
    failed: z.number(),
    inconclusive: z.number(),
    excluded: z.number(),
    natViolations: z.number(),
    mtuFailures: z.number(),
    ledgerFindings: z.number(),
    durationMs: z.number(),
    line: z.string(),
  }),
}) satisfies z.ZodType<ProbeReport>;

/** Schema of one streamed NDJSON event of a run. */
export const probeEventSchema = z.discriminatedUnion("type", [
  z.object({
    v: z.literal(1),
    type: z.literal("run-started"),
    runId: z.string(),
    startedAt: z.string(),
    cluster,
    options: probeOptionsSchema,
    plan,
  }),
  z.object({
    v: z.literal(1),
    type: z.literal("pair-result"),
    runId: z.string(),
    result: pairResult,
    final: z.boolean(),
    progress: z.object({ done: z.number(), total: z.number() }),
  }),
  z.object({
    v: z.literal(1),
    type: z.literal("retry-started"),
    runId: z.string(),
    pairs: z.array(z.string()),
    attempt: z.number(),
  }),
  z.object({ v: z.literal(1), type: z.literal("run-finished"), runId: z.string(), report: probeReportSchema }),
  z.object({
    v: z.literal(1),
    type: z.literal("run-failed"),
    runId: z.string(),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
]) satisfies z.ZodType<ProbeEvent>;

const checkRtt = z.array(z.number());

/** Schema of one dial outcome streamed by a source responder. */
export const dialResultSchema = z.object({
  pairId: z.string(),
  controlOk: z.boolean(),
  controlError: z.string().optional(),
  tcp: z.object({ ok: z.boolean(), rttMs: checkRtt, connectMs: z.number().min(0).optional(), error: z.string().optional(), reply: echoReplySchema.optional() }).optional(),
  udp: z
    .object({
      sent: z.number(),
      received: z.number(),
      rttMs: checkRtt,
      error: z.string().optional(),
      reply: echoReplySchema.optional(),
    })
    .optional(),
  mtu: z
    .object({
      tcpBytes: z.number(),
      tcpOk: z.boolean().optional(),
      tcpError: z.string().optional(),
      udpBytes: z.number(),
      udpOk: z.boolean().optional(),
      udpError: z.string().optional(),
    })
    .optional(),
}) satisfies z.ZodType<DialResult>;

/** Schema of a dial request body (`POST /v1/dial`, `POST /v1/probe/dial`). */
export const dialRequestSchema = z.object({
  v: z.literal(1),
  runId: z.string().max(200),
  options: probeOptionsSchema,
  targets: z
    .array(z.object({ pairId: z.string().max(1000), ip: z.string().max(64), port: z.number().int().min(1).max(65535) }))
    .max(MAX_DIAL_TARGETS),
}) satisfies z.ZodType<DialRequest>;
