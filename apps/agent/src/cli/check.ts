import { createServer, type Server } from "node:http";
import { writeFile, unlink } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { InvalidArgumentError, Option, type Command } from "commander";
import {
  buildProbePlan,
  DEFAULT_PROBE_OPTIONS,
  MAX_PROBE_POD_MTU,
  MAX_PROBE_TRANSFER_BYTES,
  renderJunit,
  reportPassed,
  type LedgerFinding,
  type ProbeEvent,
  type ProbeInventory,
  type ProbeOptions,
  type ProbeReport,
} from "@flatnet/core";
import { agentPaths } from "../lab/agent-process.ts";
import { requireRoot } from "../lab/errors.ts";
import { DEFAULT_STATE_DIR } from "../lab/state.ts";
import { runProbe, type DialTransport, type NodeStateSource } from "../probe/engine.ts";
import { DEFAULT_KUBE_TARGET, KubeClient, kubeInventory, kubeProbeToken, kubeProxyTransport, kubeStateSource, type KubeTarget } from "../probe/kube-source.ts";
import {
  labInventory,
  labLedgerFindings,
  labPodMtu,
  labProbeToken,
  labStateSource,
  requireLabState,
  startLabResponders,
  stopLabResponders,
} from "../lab/probe-source.ts";
import { responderSocket } from "../lab/names.ts";
import { deployProbeResponders, PROBE_MANIFEST, type ProbeDeployment } from "../probe/kube-deploy.ts";
import { ProbeMetrics } from "../probe/metrics.ts";
import { renderProgress, renderReport } from "../probe/render.ts";
import { runResponder, RESPONDER_USAGE } from "../probe/responder-cli.ts";
import { nodeProbeSocket } from "../probe/node-responder.ts";
import { agentTransport, responderTransport } from "../probe/transport.ts";
import { addExamples } from "./examples.ts";
import { nftracePair, renderNftrace } from "./nftrace.ts";
import { addOutputOption, type OutputFormat, outputFormat, renderDocument } from "./output.ts";
import { durationMs } from "../config/duration.ts";

export interface CheckCommandOptions {
  stateDir: string;
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  selector?: string;
  mode: "all-pods" | "node-pairs";
  peers?: number;
  family: "IPv4" | "IPv6" | "all";
  json: boolean;
  /** -o: text (the matrix), wide (the matrix by pod, whatever the size), json or yaml (the report document). */
  output?: OutputFormat;
  ndjson: boolean;
  junit?: string;
  by?: "node" | "pod";
  via: "direct" | "agents";
  udp: number;
  timeout: number;
  retries: number;
  mtu: boolean;
  mtuBytes: number;
  podMtu?: number;
  concurrency: number;
  watch: boolean;
  interval: number;
  metricsSocket?: string;
  metricsPort?: number;
  keepResponders: boolean;
  /** Cluster check: apply the responder DaemonSet first and remove it at the end (cilium connectivity test's way). */
  deploy?: boolean;
  deployTimeout?: number;
  color?: boolean;
  /** Print each failed pair's hops under its findings. */
  explain?: boolean;
  /** With --explain on the lab: a live nftrace of one probe packet per failed pair. */
  trace?: boolean;
  /** Probe the nodes themselves too (their agent's responder): default on for the lab, off on a cluster. */
  includeNodes?: boolean;
}

/** A commander parser of an integer flag in [min, max]; the error names the flag and the range. */
export const integer = (name: string, min: number, max: number) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} "${value}" must be an integer from ${min} to ${max}`);
  return n;
};

const duration = (name: string) => (value: string): number => {
  const n = durationMs(value);
  if (n === undefined) throw new InvalidArgumentError(`${name} "${value}" is not a duration like 500ms, 30s or 5m`);
  if (n < 100) throw new InvalidArgumentError(`${name} "${value}" is below the minimum of 100ms`);
  return n;
};

export function registerCheckCommand(program: Command): void {
  const check = program
    .command("check")
    .description("Verify the flat network: probe every pod pair (TCP, UDP, MTU, no NAT) and explain failures from the agents' state")
    .option("--state-dir <dir>", "the lab to check (its state directory)", DEFAULT_STATE_DIR)
    .option("--kubeconfig <path>", "check a Kubernetes cluster (responders of deploy/probe-daemonset.yaml, via the API server's pods/proxy)")
    .option("--context <name>", "kubeconfig context (implies a cluster check)")
    .option("--namespace <ns>", "cluster check: namespace of the responder DaemonSet", DEFAULT_KUBE_TARGET.namespace)
    .option("--deploy", `cluster check: apply ${PROBE_MANIFEST} in --namespace first (creating it, Secret flatnet-probe-token with a random token and ConfigMap flatnet-config copied from flatnet-system if missing), wait until ready, remove what it created afterwards (also on failure or Ctrl-C)`, false)
    .option("--deploy-timeout <duration>", "--deploy: how long to wait for every responder to be ready", duration("--deploy-timeout"), 300_000)
    .option("--selector <labels>", "cluster check: label selector of the responder pods", DEFAULT_KUBE_TARGET.labelSelector)
    .addOption(new Option("--mode <mode>", "all-pods: every ordered pod pair; node-pairs: one responder per node, capped peers").choices(["all-pods", "node-pairs"]).default("all-pods"))
    .option("--peers <n>", "node-pairs mode: peers that probe each node", integer("--peers", 1, 1000))
    .addOption(new Option("--family <family>", "IP family to probe").choices(["IPv4", "IPv6", "all"]).default("all"))
    .option("--ndjson", "stream the run's events as NDJSON (run-started, pair-result..., run-finished)", false)
    .option("--junit <file>", "also write a JUnit XML report to this file")
    .addOption(new Option("--by <axis>", "matrix rows and columns").choices(["node", "pod"]))
    .addOption(new Option("--via <path>", "control path: each pod's responder socket, or each node's agent").choices(["direct", "agents"]).default("direct"))
    .option("--udp <n>", "UDP echoes per pair", integer("--udp", 0, 100), DEFAULT_PROBE_OPTIONS.udpCount)
    .option("--timeout <ms>", "per-probe timeout in milliseconds", integer("--timeout", 10, 60_000), DEFAULT_PROBE_OPTIONS.timeoutMs)
    .option("--retries <n>", "retries of failed pairs after the first pass", integer("--retries", 0, 5), DEFAULT_PROBE_OPTIONS.retries)
    .option("--no-mtu", "skip the MTU black-hole checks (large TCP transfer, pod-MTU UDP datagram)")
    .option("--mtu-bytes <n>", "bytes of the TCP transfer of the MTU check", integer("--mtu-bytes", 2048, MAX_PROBE_TRANSFER_BYTES), DEFAULT_PROBE_OPTIONS.mtuTcpBytes)
    .option("--pod-mtu <n>", "pod MTU for the UDP MTU check (default: read from the pods)", integer("--pod-mtu", 68, MAX_PROBE_POD_MTU))
    .option("--concurrency <n>", "pairs dialled at once per source pod", integer("--concurrency", 1, 1024), DEFAULT_PROBE_OPTIONS.concurrency)
    .option("--watch", "run continuously and serve Prometheus metrics", false)
    .option("--interval <duration>", "pause between runs in --watch mode", duration("interval"), 30_000)
    .option("--metrics-socket <path>", "--watch: serve /metrics on this unix socket")
    .option("--metrics-port <port>", "--watch: serve /metrics on 127.0.0.1:<port>", integer("--metrics-port", 1, 65535))
    .option("--keep-responders", "leave the probe responders this run started running", false)
    .option("--include-nodes", "also probe the nodes (each agent's responder on its node IPs): node -> remote pods, pods -> remote nodes (default on the lab)")
    .option("--no-include-nodes", "probe pods only")
    .option("--explain", "under each failed pair, print its hops (the path tracer's walk), not only its findings", false)
    .option("--trace", "with --explain on the lab: also follow one UDP probe packet of each failed pair (up to 10) live through the nodes' netfilter (meta nftrace, a temporary table inet fn_trace, always removed)", false)
    .option("--no-color", "no ANSI colour");
  addOutputOption(check, ["text", "wide", "json", "yaml"]);
  addExamples(
    check,
    "flatnet check                                  # the lab in /run/flatnet/lab (root)",
    "flatnet check -o json > report.json            # the report document; exit 1 when a pair failed",
    "flatnet check --context prod --mode node-pairs --peers 3",
    "flatnet check --deploy --namespace flatnet-check   # apply the responders, wait, check, remove them",
    "flatnet check --explain                        # each failed pair: its hops, finding and fix",
    "flatnet check --watch --metrics-port 9471      # keep checking, serve Prometheus metrics",
  )
    .addHelpText("after", "\nExit codes: 0 every pair passed, 1 failures found, 2 usage error or could not check.")
    .action(async (options: CheckCommandOptions) => {
      try {
        process.exitCode = await runCheck(options);
      } catch (error) {
        process.stderr.write(`flatnet check: ${(error as Error).message}\n`);
        process.exitCode = 2;
      }
    });

  // Internal: what lab pods run; hidden from help and completion.
  program
    .command("probe-responder", { hidden: true })
    .description("Run a probe responder in this network namespace (started in each pod by the lab or a DaemonSet)")
    .allowUnknownOption(true)
    .helpOption(false)
    .argument("[args...]", RESPONDER_USAGE)
    .action((args: string[]) => runResponder(args));
}

/** The options `flatnet check` runs with when given no flags (for `flatnet lab check`). */
export function defaultCheckOptions(overrides: Partial<CheckCommandOptions> = {}): CheckCommandOptions {
  return {
    stateDir: DEFAULT_STATE_DIR,
    mode: "all-pods",
    family: "all",
    json: false,
    ndjson: false,
    via: "direct",
    udp: DEFAULT_PROBE_OPTIONS.udpCount,
    timeout: DEFAULT_PROBE_OPTIONS.timeoutMs,
    retries: DEFAULT_PROBE_OPTIONS.retries,
    mtu: true,
    mtuBytes: DEFAULT_PROBE_OPTIONS.mtuTcpBytes,
    concurrency: DEFAULT_PROBE_OPTIONS.concurrency,
    watch: false,
    interval: 30_000,
    keepResponders: false,
    ...overrides,
  };
}

/** Where a check gets its pods, how it reaches them, and what it knows about the nodes. */
export interface CheckSource {
  inventory(): Promise<ProbeInventory>;
  transport: DialTransport;
  states(inventory: ProbeInventory, podMtu: number): NodeStateSource;
  ledger?(): Promise<LedgerFinding[]>;
  podMtu(): Promise<number>;
  /** Before each run: make sure the responders run (`signal`: Ctrl-C, so a long wait ends). */
  prepare?(signal: AbortSignal): Promise<void>;
  /** At the end: stop what this command started. */
  finish?(): Promise<void>;
}

export async function labSource(options: CheckCommandOptions): Promise<CheckSource> {
  requireRoot("checking the lab", "flatnet check", "; a cluster is checked with --kubeconfig / --context");
  let state = await requireLabState(options.stateDir);
  if (state.pods.length < 2) {
    throw new Error(`the lab in "${options.stateDir}" has ${state.pods.length} pod(s); a check needs at least 2 (is "flatnet lab up" complete?)`);
  }
  const started = new Set<string>();
  // Relayed dials reach the pods over TCP: the agents present the lab's token for this command.
  const token = options.via === "agents" ? await labProbeToken(options.stateDir) : undefined;
  return {
    async inventory() {
      state = await requireLabState(options.stateDir);
      return labInventory(state);
    },
    transport:
      options.via === "agents"
        ? agentTransport((node) => ({ socketPath: agentPaths(options.stateDir, node).socket }), undefined, token)
        : responderTransport((src) =>
            // A node endpoint's responder runs in its agent, with a control socket next to the agent's.
            src.kind === "node"
              ? { socketPath: nodeProbeSocket(agentPaths(options.stateDir, src.node).socket) }
              : { socketPath: responderSocket(options.stateDir, src.pod) },
          ),
    states: (_inventory, podMtu) => labStateSource(options.stateDir, state, podMtu),
    ledger: () => labLedgerFindings(options.stateDir, state),
    podMtu: () => labPodMtu(state),
    async prepare() {
      for (const pod of await startLabResponders(options.stateDir)) started.add(pod);
    },
    async finish() {
      if (!options.keepResponders && started.size > 0) await stopLabResponders(options.stateDir, [...started]);
    },
  };
}

export function kubeSource(options: CheckCommandOptions): CheckSource {
  if (options.via === "agents") throw new Error("--via agents works on the lab only; on a cluster probes go through the API server's pods/proxy");
  const target: KubeTarget = {
    ...DEFAULT_KUBE_TARGET,
    ...(options.kubeconfig === undefined ? {} : { kubeconfig: options.kubeconfig }),
    ...(options.context === undefined ? {} : { context: options.context }),
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    ...(options.selector === undefined ? {} : { labelSelector: options.selector }),
  };
  const client = KubeClient.load(target);
  let deployment: ProbeDeployment | undefined;
  let token: string | undefined;
  const say = (line: string): void => void process.stderr.write(`flatnet check: ${line}\n`);
  return {
    async prepare(signal: AbortSignal) {
      if (options.deploy === true) {
        deployment ??= await deployProbeResponders(client, { namespace: target.namespace, timeoutMs: options.deployTimeout ?? 300_000, signal, progress: say });
      }
      token ??= await kubeProbeToken(client, target.namespace);
    },
    async finish() {
      if (options.deploy !== true) return;
      if (options.keepResponders) return void (deployment !== undefined && say(`--keep-responders: daemonset ${deployment.namespace}/${deployment.name} left running`));
      try {
        await deployment?.remove();
      } catch (error) {
        throw new Error(`${(error as Error).message}; remove it by hand: kubectl -n ${deployment!.namespace} delete daemonset ${deployment!.name}`);
      }
    },
    async inventory() {
      const inventory = await kubeInventory(client, target);
      if (inventory.pods.length === 0) {
        throw new Error(`no probe responders in namespace "${target.namespace}" with labels "${target.labelSelector}"; apply deploy/probe-daemonset.yaml`);
      }
      return inventory;
    },
    transport: { dial: (src, request) => kubeProxyTransport(client, target.namespace, token).dial(src, request) },
    states: (inventory) => kubeStateSource(inventory, { client, namespace: target.namespace, ...(token === undefined ? {} : { token }) }),
    // The pods' MTU is not visible through the API: the UDP MTU check needs --pod-mtu.
    podMtu: async () => 0,
  };
}

/** Run `flatnet check` on a lab or a cluster; returns the exit code (0 pass, 1 failures found, 2 could not check). */
export async function runCheck(options: CheckCommandOptions): Promise<number> {
  const format = outputFormat(options);
  if (options.ndjson && format !== "text") throw new Error(`--ndjson and -o ${format} are exclusive: pick one output document format`);
  const onCluster = options.kubeconfig !== undefined || options.context !== undefined || options.deploy === true;
  if (onCluster && options.includeNodes === true) {
    throw new Error("--include-nodes works on the lab only: on a cluster the agents' node responders are not reachable through the API server yet");
  }
  const source = onCluster ? kubeSource(options) : await labSource(options);
  const metrics = options.watch ? new ProbeMetrics() : undefined;
  let server: Server | undefined;
  // --watch ends on SIGTERM/SIGINT after the current run, --deploy at once; either way what this run started is removed.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  if (options.watch || options.deploy === true) {
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }
  try {
    try {
      await source.prepare?.(stop.signal);
    } catch (error) {
      if (!stop.signal.aborted || options.watch) throw error;
      process.stderr.write("flatnet check: interrupted before the check; what it deployed is removed\n");
      return 130;
    }
    if (metrics !== undefined) server = await serveMetrics(metrics, options);
    const probeOptions: ProbeOptions = {
      ...DEFAULT_PROBE_OPTIONS,
      udpCount: options.udp,
      timeoutMs: options.timeout,
      retries: options.retries,
      concurrency: options.concurrency,
      mtuTcpBytes: options.mtu ? options.mtuBytes : 0,
      podMtu: options.mtu ? (options.podMtu ?? (await source.podMtu())) : 0,
    };
    for (;;) {
      const report = await checkOnce(source, options, probeOptions, stop.signal);
      metrics?.record(report);
      // Interrupted outside --watch: 130 (128 + SIGINT), as a shell reports it.
      if (stop.signal.aborted && !options.watch) return 130;
      if (!options.watch || stop.signal.aborted) return reportPassed(report) ? 0 : 1;
      await delay(options.interval, undefined, { signal: stop.signal }).catch(() => {});
      if (stop.signal.aborted) return reportPassed(report) ? 0 : 1;
      await source.prepare?.(stop.signal);
    }
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    if (server !== undefined) await new Promise((resolve) => server!.close(resolve));
    await source.finish?.();
  }
}

async function checkOnce(source: CheckSource, options: CheckCommandOptions, probeOptions: ProbeOptions, signal?: AbortSignal): Promise<ProbeReport> {
  const inventory = await source.inventory();
  const plan = buildProbePlan(inventory, {
    mode: options.mode,
    ...(options.family === "all" ? {} : { families: [options.family] }),
    ...(options.peers === undefined ? {} : { peersPerNode: options.peers }),
    includeNodes: options.includeNodes ?? inventory.cluster.source === "lab",
  });
  const format = outputFormat(options);
  const tty = process.stderr.isTTY === true && !options.ndjson;
  let failing = 0;
  const onEvent = (event: ProbeEvent): void => {
    if (options.ndjson) process.stdout.write(`${JSON.stringify(event)}\n`);
    if (tty && event.type === "pair-result") {
      if (event.final && (event.result.verdict === "failed" || event.result.verdict === "inconclusive")) failing++;
      if (event.progress.done % 50 === 0 || event.progress.done === event.progress.total) {
        process.stderr.write(renderProgress(event.progress.done, event.progress.total, failing));
      }
    }
  };
  const report = await runProbe({
    cluster: inventory.cluster,
    plan,
    options: probeOptions,
    transport: source.transport,
    nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
    states: source.states(inventory, probeOptions.podMtu),
    ...(source.ledger === undefined ? {} : { ledger: source.ledger }),
    ...(signal === undefined ? {} : { signal }),
    onEvent,
  });
  if (tty) process.stderr.write("\r\u001b[K");
  if (options.junit !== undefined) await writeFile(options.junit, renderJunit(report));
  if (format === "json" || format === "yaml") process.stdout.write(renderDocument(report, format));
  else if (!options.ndjson) {
    const color = options.color !== false && process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
    const by = options.by ?? (format === "wide" ? "pod" : undefined);
    process.stdout.write(renderReport(report, { color, explain: options.explain === true, ...(by === undefined ? {} : { by }) }));
    if (options.explain === true && options.trace === true && inventory.cluster.source === "lab") {
      for (const r of report.results.filter((x) => x.verdict === "failed").slice(0, 10)) {
        process.stdout.write(`${[`${r.pair.id}:`, ...renderNftrace(await nftracePair(options.stateDir, r.pair), "  ")].join("\n")}\n`);
      }
    }
  }
  return report;
}

async function serveMetrics(metrics: ProbeMetrics, options: CheckCommandOptions): Promise<Server | undefined> {
  if (options.metricsSocket === undefined && options.metricsPort === undefined) return undefined;
  const server = createServer((req, res) => {
    if (req.method === "GET" && (req.url ?? "").split("?")[0] === "/metrics") {
      metrics.registry.metrics().then((text) => {
        res.writeHead(200, { "content-type": metrics.registry.contentType });
        res.end(text);
      }, (error: Error) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(error.message);
      });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("flatnet check serves GET /metrics only\n");
  });
  if (options.metricsSocket !== undefined) await unlink(options.metricsSocket).catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // Loopback only: the metrics of a lab check never reach a shared network.
    if (options.metricsSocket !== undefined) server.listen(options.metricsSocket, () => resolve());
    else server.listen(options.metricsPort, "127.0.0.1", () => resolve());
  });
  return server;
}
