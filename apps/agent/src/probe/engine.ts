import { randomUUID } from "node:crypto";
import {
  buildProbeReport,
  combineAttempts,
  evaluateAttempt,
  explainPair,
  planTraceQueries,
  PROBE_PROTOCOL_VERSION,
  type AttemptOutcome,
  type DialRequest,
  type DialResult,
  type Diagnosis,
  type LedgerFinding,
  type NodeEvidence,
  type NodeProbeState,
  type PairResult,
  type ProbeEndpoint,
  type ProbeEvent,
  type ProbeOptions,
  type ProbePair,
  type ProbePlan,
  type ProbeReport,
  type RouteQuery,
} from "@flatnet/core";

/** How the engine reaches a source pod's responder (directly, or through the source node's agent). */
export interface DialTransport {
  /** Ask `src`'s responder to dial the request's targets; yields results as they arrive. May throw on control failure. */
  dial(src: ProbeEndpoint, request: DialRequest): AsyncIterable<DialResult>;
}

/** Reads the nodes' own state for diagnosis; a node whose agent does not answer comes back `reachable: false`. */
export interface NodeStateSource {
  read(nodes: readonly string[]): Promise<Map<string, NodeProbeState>>;
  /**
   * The path tracer's evidence, once per node, answering each node's route queries; may add places that are
   * not nodes (the lab's underlay bridge). A node that cannot be asked is left out.
   */
  evidence?(queries: ReadonlyMap<string, RouteQuery[]>): Promise<Map<string, NodeEvidence>>;
}

export interface RunProbeInput {
  runId?: string;
  cluster: ProbeReport["cluster"];
  plan: ProbePlan;
  options: ProbeOptions;
  transport: DialTransport;
  /** Each node's own addresses, to tell `snat-to-node-ip` apart. */
  nodeIps: ReadonlyMap<string, readonly string[]>;
  states?: NodeStateSource;
  ledger?: () => Promise<LedgerFinding[]>;
  onEvent?: (event: ProbeEvent) => void;
  /** Pause before retry k is k times this (default 100 ms): lets a transient condition clear. */
  retryBackoffMs?: number;
  signal?: AbortSignal;
}

/**
 * Run a plan: a breadth-first pass over every pair (all source pods at once, each dialling its targets
 * concurrently), then retries of the failed pairs only; every attempt streams a `pair-result` event.
 * Failed pairs are then explained from the nodes' state, and the report is returned (and streamed).
 */
export async function runProbe(input: RunProbeInput): Promise<ProbeReport> {
  const runId = input.runId ?? randomUUID();
  const startedAt = new Date();
  const emit = (event: ProbeEvent): void => input.onEvent?.(event);
  emit({ v: 1, type: "run-started", runId, startedAt: startedAt.toISOString(), cluster: input.cluster, options: input.options, plan: input.plan });

  const active = input.plan.pairs.filter((p) => p.excluded === undefined);
  const total = input.plan.pairs.length;
  const attempts = new Map<string, AttemptOutcome[]>(active.map((p) => [p.id, []]));
  const final = new Map<string, PairResult>();
  for (const pair of input.plan.pairs) {
    if (pair.excluded !== undefined) {
      const result = combineAttempts(pair, []);
      final.set(pair.id, result);
      emit({ v: 1, type: "pair-result", runId, result, final: true, progress: { done: final.size, total } });
    }
  }

  let pending = active;
  for (let attempt = 1; attempt <= input.options.retries + 1 && pending.length > 0; attempt++) {
    if (input.signal?.aborted) break;
    if (attempt > 1) {
      emit({ v: 1, type: "retry-started", runId, pairs: pending.map((p) => p.id), attempt });
      await new Promise((resolve) => setTimeout(resolve, (input.retryBackoffMs ?? 100) * (attempt - 1)));
    }
    const last = attempt === input.options.retries + 1;
    const failedNow: ProbePair[] = [];
    await dialPass(runId, pending, input, (pair, dial) => {
      const outcome = evaluateAttempt(pair, dial, input.nodeIps.get(pair.src.node) ?? []);
      const history = attempts.get(pair.id) as AttemptOutcome[];
      history.push(outcome);
      const result = combineAttempts(pair, history);
      const isFinal = outcome.pass || last;
      if (isFinal) final.set(pair.id, result);
      else failedNow.push(pair);
      emit({ v: 1, type: "pair-result", runId, result, final: isFinal, progress: { done: final.size, total } });
    });
    pending = failedNow;
  }
  // An aborted run leaves pairs without a final result: report what is known.
  for (const pair of active) {
    if (!final.has(pair.id)) {
      const history = attempts.get(pair.id) as AttemptOutcome[];
      if (history.length > 0) final.set(pair.id, combineAttempts(pair, history));
    }
  }

  const results = [...final.values()];
  const broken = results.filter((r) => r.verdict === "failed" || r.verdict === "inconclusive");
  const nodeDiagnosis: Diagnosis[] = [];
  if (broken.length > 0 && input.states !== undefined) {
    const nodes = [...new Set(broken.flatMap((r) => [r.pair.src.node, r.pair.dst.node]))].sort();
    const failed = broken.filter((r) => r.verdict === "failed");
    const [states, evidence] = await Promise.all([
      input.states.read(nodes),
      failed.length > 0 && input.states.evidence !== undefined
        ? input.states.evidence(planTraceQueries(failed.map((r) => r.pair), input.nodeIps)).catch(() => new Map<string, NodeEvidence>())
        : new Map<string, NodeEvidence>(),
    ]);
    // Conntrack entries idle for longer than this run belong to earlier flows.
    const probeSeconds = (Date.now() - startedAt.getTime()) / 1000;
    for (const r of broken) {
      const explained = explainPair(r, states, evidence, input.nodeIps, { probeSeconds });
      r.diagnosis = explained.diagnosis;
      if (explained.hops !== undefined) r.hops = explained.hops;
    }
    for (const state of states.values()) {
      if (!state.reachable) nodeDiagnosis.push({ code: "agent-unreachable", node: state.node, message: `the agent of ${state.node} did not answer${state.error ? ` (${state.error})` : ""}` });
    }
  }
  // The control failure itself is evidence: name it even when the node's state could not say more.
  for (const r of broken) {
    if (r.verdict === "inconclusive" && !r.diagnosis.some((d) => d.code === "agent-unreachable" && d.node === r.pair.src.node)) {
      r.diagnosis.unshift({
        code: "agent-unreachable",
        node: r.pair.src.node,
        message: `neither ${r.pair.src.node}'s agent nor ${r.pair.src.pod}'s responder could be asked to probe: the data path was not tested`,
      });
    }
  }
  const ledger = input.ledger ? await input.ledger() : [];
  const report = buildProbeReport({
    runId,
    cluster: input.cluster,
    startedAt,
    finishedAt: new Date(),
    options: input.options,
    plan: input.plan,
    results,
    ledger,
    nodeDiagnosis,
  });
  emit({ v: 1, type: "run-finished", runId, report });
  return report;
}

/** One pass: every source pod dials its pairs at once; a control failure marks that source's undelivered pairs. */
async function dialPass(runId: string, pairs: readonly ProbePair[], input: RunProbeInput, onResult: (pair: ProbePair, dial: DialResult) => void): Promise<void> {
  const bySource = new Map<string, ProbePair[]>();
  for (const pair of pairs) {
    const key = `${pair.src.namespace ?? ""}/${pair.src.pod}/${pair.src.ip}`;
    bySource.set(key, [...(bySource.get(key) ?? []), pair]);
  }
  await Promise.all(
    [...bySource.values()].map(async (group) => {
      const src = (group[0] as ProbePair).src;
      const byId = new Map(group.map((p) => [p.id, p]));
      const request: DialRequest = {
        v: PROBE_PROTOCOL_VERSION,
        runId,
        options: input.options,
        targets: group.map((p) => ({ pairId: p.id, ip: p.dst.ip, port: p.dst.port })),
      };
      let controlError = "the source responder ended the stream without a result";
      try {
        for await (const dial of input.transport.dial(src, request)) {
          const pair = byId.get(dial.pairId);
          if (pair === undefined) continue;
          byId.delete(dial.pairId);
          onResult(pair, dial);
        }
      } catch (error) {
        controlError = `control path to ${src.pod} on ${src.node}: ${(error as Error).message}`;
      }
      for (const pair of byId.values()) onResult(pair, { pairId: pair.id, controlOk: false, controlError });
    }),
  );
}
