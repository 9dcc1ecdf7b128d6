import { Option, type Command } from "commander";
import {
  buildProbePlan,
  DEFAULT_PROBE_OPTIONS,
  planTraceQueries,
  tracePair,
  type PairResult,
  type ProbeEndpoint,
  type ProbePair,
} from "@flatnet/core";
import { DEFAULT_STATE_DIR } from "../lab/state.ts";
import { runProbe } from "../probe/engine.ts";
import { renderFindings, renderHops } from "../probe/render.ts";
import { defaultCheckOptions, integer, labSource } from "./check.ts";
import { addExamples } from "./examples.ts";
import { nftracePair, renderNftrace, type NodeNftTrace } from "./nftrace.ts";
import { addOutputOption, type OutputFlags, outputFormat, renderDocument } from "./output.ts";

export interface TraceCommandOptions extends OutputFlags {
  stateDir: string;
  family: "IPv4" | "IPv6" | "all";
  timeout: number;
  color?: boolean;
  trace?: boolean;
}

// One probe attempt of a short timeout: on a lab a healthy pair answers in well under a millisecond.
const TRACE_TIMEOUT_MS = 300;

export function registerTraceCommand(program: Command): void {
  const trace = program
    .command("trace")
    .description("Trace one pair through every kernel on its path (read-only) and name what breaks it, with the fix")
    .argument("<src>", "source: a pod name, a pod IP or a node name")
    .argument("<dst>", "destination: a pod name, a pod IP or a node name")
    .option("--state-dir <dir>", "the lab to trace in (its state directory)", DEFAULT_STATE_DIR)
    .addOption(new Option("--family <family>", "IP family to trace").choices(["IPv4", "IPv6", "all"]).default("all"))
    .option("--timeout <ms>", "probe timeout in milliseconds", integer("--timeout", 10, 60_000), TRACE_TIMEOUT_MS)
    .option("--trace", "also follow one UDP probe packet live through the netfilter of both nodes (meta nftrace, a temporary table inet fn_trace, always removed)", false)
    .option("--no-color", "no ANSI colour");
  addOutputOption(trace, ["text", "json", "yaml"]);
  addExamples(
    trace,
    "flatnet trace pod-node1-1 10.244.2.3            # one pair, every kernel on its path (lab, root)",
    "flatnet trace node1 pod-node2-1 -o json         # hops and findings as a document",
    "flatnet trace pod-node1-1 pod-node2-1 --trace   # and the nft table/chain/rule that dropped or rewrote its packet",
  )
    .addHelpText("after", "\nExit codes: 0 the pair passed, 1 it is broken (findings printed), 2 usage error or could not trace.")
    .action(async (src: string, dst: string, options: TraceCommandOptions) => {
      try {
        process.exitCode = await runTrace(src, dst, options);
      } catch (error) {
        process.stderr.write(`flatnet trace: ${(error as Error).message}\n`);
        process.exitCode = 2;
      }
    });
}

/** The JSON document of `flatnet trace --json`: each traced pair with its verdict, hops and findings. */
export interface TraceDocument {
  v: 1;
  kind: "flatnet-trace";
  pairs: (Pick<PairResult, "pair" | "verdict" | "problems" | "nat" | "error" | "hops" | "diagnosis"> & { nftrace?: NodeNftTrace[] })[];
}

/** Trace SRC -> DST on the lab: probe the pair once, gather each node's evidence once, walk the hops. 0 ok, 1 broken, 2 error. */
export async function runTrace(src: string, dst: string, options: TraceCommandOptions): Promise<number> {
  const source = await labSource(defaultCheckOptions({ stateDir: options.stateDir }));
  try {
    await source.prepare?.(new AbortController().signal);
    const inventory = await source.inventory();
    const plan = buildProbePlan(inventory, { mode: "all-pods", includeNodes: true, ...(options.family === "all" ? {} : { families: [options.family] }) });
    const pairs = plan.pairs.filter((p) => p.excluded === undefined && names(p.src, src) && names(p.dst, dst));
    if (pairs.length === 0) {
      const known = [...new Set(plan.pairs.flatMap((p) => [p.src.pod, p.src.ip]))].slice(0, 12).join(", ");
      throw new Error(`no pair from "${src}" to "${dst}" in the lab: name a pod, a pod IP or a node (known: ${known}, ...)`);
    }
    const podMtu = await source.podMtu();
    const nodeIps = new Map(inventory.nodes.map((n) => [n.name, n.nodeIps]));
    const states = source.states(inventory, podMtu);
    const report = await runProbe({
      cluster: inventory.cluster,
      plan: { ...plan, pairs },
      options: { ...DEFAULT_PROBE_OPTIONS, timeoutMs: options.timeout, retries: 0, udpCount: 1, podMtu },
      transport: source.transport,
      nodeIps,
      states,
      retryBackoffMs: 0,
    });
    // A pair that passed was not traced by the check: walk its hops too, to show the path.
    const untraced = report.results.filter((r) => r.hops === undefined);
    if (untraced.length > 0 && states.evidence !== undefined) {
      const evidence = await states.evidence(planTraceQueries(untraced.map((r) => r.pair), nodeIps));
      const known = await states.read([...new Set(untraced.flatMap((r) => [r.pair.src.node, r.pair.dst.node]))]);
      for (const r of untraced) r.hops = tracePair(r, known, evidence, nodeIps).hops;
    }
    const document: TraceDocument = {
      v: 1,
      kind: "flatnet-trace",
      pairs: report.results.map((r) => ({ pair: r.pair, verdict: r.verdict, problems: r.problems, nat: r.nat, ...(r.error === undefined ? {} : { error: r.error }), hops: r.hops ?? [], diagnosis: r.diagnosis })),
    };
    if (options.trace === true) {
      for (const entry of document.pairs) entry.nftrace = await nftracePair(options.stateDir, entry.pair);
    }
    const format = outputFormat(options);
    if (format === "json" || format === "yaml") process.stdout.write(renderDocument(document, format));
    else process.stdout.write(renderTrace(document, options.color !== false && process.stdout.isTTY === true && process.env.NO_COLOR === undefined));
    return report.results.every((r) => r.verdict === "ok" || r.verdict === "flaky") ? 0 : 1;
  } finally {
    await source.finish?.();
  }
}

function names(endpoint: ProbeEndpoint, text: string): boolean {
  if (endpoint.kind === "node") return endpoint.node === text || endpoint.pod === text || endpoint.ip === text;
  return endpoint.pod === text || endpoint.ip === text || `${endpoint.namespace ?? ""}/${endpoint.pod}` === text;
}

/** The human form: per pair a head line, its hops forward then back, and the findings with their fixes. */
export function renderTrace(document: TraceDocument, color: boolean): string {
  const paint = (code: number, text: string): string => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const lines: string[] = [];
  for (const r of document.pairs) {
    const p: ProbePair = r.pair;
    const ok = r.verdict === "ok" || r.verdict === "flaky";
    lines.push(paint(ok ? 32 : 31, `${p.src.pod} (${p.src.ip}) -> ${p.dst.pod} (${p.dst.ip}) ${p.family} ${p.path}: ${r.verdict}${r.problems.length > 0 ? ` (${r.problems.join(", ")})` : ""}`));
    lines.push(...renderHops(r.hops ?? [], "  "));
    if (!ok) lines.push(...renderFindings(r.diagnosis, "  "));
    lines.push(...renderNftrace(r.nftrace ?? [], "  "));
    lines.push("");
  }
  return lines.join("\n");
}
