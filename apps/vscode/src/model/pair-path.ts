/**
 * The drawable path of one probe pair, from the path tracer's hops (`PairResult.hops`): source pod -> its node ->
 * underlay -> destination node -> destination pod, then the reply back, with the first broken hop marked and the
 * findings (message and fix text) placed at the hop that shows them. Pure: the topology webview only draws it.
 */
import type { Diagnosis, PairResult, TraceHop } from "@flatnet/core";
import { z } from "zod";

const findingSchema = z.object({ code: z.string(), node: z.string().optional(), message: z.string(), fix: z.string().optional() });
export const pairPathSchema = z.object({
  pairId: z.string(),
  verdict: z.string(),
  /** Forward steps (source pod first, destination pod last), then the reply steps back. */
  steps: z.array(
    z.object({
      role: z.enum(["src-pod", "src-node", "underlay", "dst-node", "dst-pod"]),
      direction: z.enum(["forward", "reply"]),
      /** Pod name (`namespace/name` when known), node name, or the underlay / router name. */
      name: z.string(),
      /** Packet as it arrives at this step: `10.244.1.2 > 10.244.2.2`; endpoints carry none. */
      packet: z.string().optional(),
      /** What this kernel would do with it (`via 172.31.0.12 dev eth0`, `blackhole`); endpoints carry none. */
      decision: z.string().optional(),
      status: z.enum(["ok", "broken", "unknown"]),
      findings: z.array(findingSchema),
    }),
  ).max(64),
  /** Index in `steps` of the first broken hop, when a hop is broken. */
  brokenAt: z.number().int().nonnegative().optional(),
  /** Findings that no hop carries (e.g. an agent that did not answer): shown under the path. */
  unplaced: z.array(findingSchema),
  /** False when the pair has no hops (no evidence was gathered): only the endpoints are drawn. */
  traced: z.boolean(),
});

export type PathFinding = z.infer<typeof findingSchema>;
export type PairPath = z.infer<typeof pairPathSchema>;
export type PathStep = PairPath["steps"][number];

function finding(d: Diagnosis): PathFinding {
  return { code: d.code, ...(d.node ? { node: d.node } : {}), message: d.message, ...(d.fix ? { fix: d.fix } : {}) };
}

function endpointName(endpoint: PairResult["pair"]["src"]): string {
  return endpoint.kind === "node" ? endpoint.node : endpoint.namespace ? `${endpoint.namespace}/${endpoint.pod}` : endpoint.pod;
}

export function pairPath(result: PairResult): PairPath {
  const hops = result.hops ?? [];
  const used = new Set<Diagnosis>();
  // A hop names its findings by code; the diagnosis of that code on the hop's node first, else any of that code.
  const findingsAt = (hop: TraceHop): PathFinding[] =>
    hop.findings.flatMap((code) => {
      const match = result.diagnosis.find((d) => d.code === code && d.node === hop.node) ?? result.diagnosis.find((d) => d.code === code);
      if (!match) return [{ code, message: code }];
      used.add(match);
      return [finding(match)];
    });
  const hopStep = (hop: TraceHop): PathStep => ({
    role: hop.role,
    direction: hop.direction,
    name: hop.node,
    packet: `${hop.packet.src} > ${hop.packet.dst}`,
    decision: hop.decision,
    status: hop.status,
    findings: findingsAt(hop),
  });
  const endpoint = (role: "src-pod" | "dst-pod", direction: "forward" | "reply"): PathStep => ({
    role,
    direction,
    name: endpointName(role === "src-pod" ? result.pair.src : result.pair.dst),
    status: "ok",
    findings: [],
  });
  const steps: PathStep[] = [
    endpoint("src-pod", "forward"),
    ...hops.filter((hop) => hop.direction === "forward").map(hopStep),
    endpoint("dst-pod", "forward"),
  ];
  const reply = hops.filter((hop) => hop.direction === "reply");
  if (reply.length > 0) steps.push(endpoint("dst-pod", "reply"), ...reply.map(hopStep), endpoint("src-pod", "reply"));
  const brokenAt = steps.findIndex((step) => step.status === "broken");
  return {
    pairId: result.pair.id,
    verdict: result.verdict,
    steps,
    ...(brokenAt >= 0 ? { brokenAt } : {}),
    unplaced: result.diagnosis.filter((d) => !used.has(d)).map(finding),
    traced: hops.length > 0,
  };
}
