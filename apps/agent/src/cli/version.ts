import type { Command } from "commander";
import { z } from "zod";
import { DEFAULT_KUBE_TARGET, KubeClient } from "../probe/kube-source.ts";
import { type BuildInfo, buildInfo } from "../build-info.ts";
import { tryGetJson } from "../http/client.ts";
import { agentPaths } from "../lab/agent-process.ts";
import { DEFAULT_STATE_DIR, loadState } from "../lab/state.ts";
import { addExamples } from "./examples.ts";
import { addOutputOption, type OutputFlags, outputFormat, renderDocument } from "./output.ts";

/** One lab agent's answer to GET /v1/version, or why it gave none. */
export interface AgentVersion {
  source: "lab";
  node: string;
  socket: string;
  version?: BuildInfo;
  error?: string;
}

/** A cluster's agent pod: its API is a unix socket on the node, so the image it runs is what a client can see. */
export interface ClusterAgentVersion {
  source: "cluster";
  node: string;
  pod: string;
  image: string | null;
  ready: boolean;
}

// The agent DaemonSet's pods (deploy/daemonset.yaml), only the fields read here.
const agentPodList = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string() }),
      spec: z.object({ nodeName: z.string().optional(), containers: z.array(z.object({ name: z.string(), image: z.string().optional() })) }),
      status: z.object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })).optional() }).optional(),
    }),
  ),
});
const AGENT_SELECTOR = "app.kubernetes.io/name=flatnet,app.kubernetes.io/component=agent";

/** The agent pods of a cluster in `namespace`, each with its node, image and readiness. */
export async function clusterAgentVersions(client: KubeClient, namespace: string): Promise<ClusterAgentVersion[]> {
  const pods = await client.getJson(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${encodeURIComponent(AGENT_SELECTOR)}`, agentPodList);
  return pods.items.map((pod) => ({
    source: "cluster",
    node: pod.spec.nodeName ?? "(unscheduled)",
    pod: pod.metadata.name,
    image: (pod.spec.containers.find((c) => c.name === "agent") ?? pod.spec.containers[0])?.image ?? null,
    ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
  }));
}

export interface VersionReport {
  client: BuildInfo;
  /** The lab's state directory when a lab was found there, else null. */
  lab: string | null;
  agents: AgentVersion[];
  /** With --kubeconfig / --context: the cluster's name and its agent pods. */
  cluster?: { name: string; namespace: string; agents: ClusterAgentVersion[] };
}

/** The client's build, and each agent of the lab in `stateDir` that answers on its socket within `timeoutMs`. */
export async function collectVersions(stateDir: string, timeoutMs = 1_000): Promise<VersionReport> {
  const state = await loadState(stateDir).catch(() => undefined);
  const agents = await Promise.all(
    (state?.nodes ?? []).map(async (node): Promise<AgentVersion> => {
      const { socket } = agentPaths(stateDir, node.name);
      const answer = await tryGetJson({ socketPath: socket }, "/v1/version", timeoutMs);
      if (answer?.status === 200) return { source: "lab", node: node.name, socket, version: answer.body as BuildInfo };
      const error = answer === undefined ? "not reachable" : `answered HTTP ${answer.status} (an agent older than /v1/version?)`;
      return { source: "lab", node: node.name, socket, error };
    }),
  );
  return { client: buildInfo(), lab: state === undefined ? null : stateDir, agents };
}

const describe = (info: BuildInfo): string => `flatnet ${info.version} (commit ${info.commit ?? "unknown"}, ${info.runtime}, ${info.platform})`;

export function renderVersions(report: VersionReport): string {
  const lines = [`client: ${describe(report.client)}`];
  if (report.lab !== null) {
    lines.push(`lab ${report.lab}:`);
    for (const agent of report.agents) lines.push(`  ${agent.node.padEnd(8)} ${agent.version === undefined ? agent.error : describe(agent.version)}`);
  }
  if (report.cluster !== undefined) {
    lines.push(`cluster ${report.cluster.name}, namespace ${report.cluster.namespace}:${report.cluster.agents.length === 0 ? " no flatnet agent pods" : ""}`);
    for (const agent of report.cluster.agents) lines.push(`  ${agent.node.padEnd(8)} ${agent.pod} ${agent.image ?? "(no image)"}${agent.ready ? "" : " (not ready)"}`);
  }
  return `${lines.join("\n")}\n`;
}

export function registerVersionCommand(program: Command): void {
  // kubectl's split: --version is the client only and instant; `version` also asks the agents.
  program.version(buildInfo().version, "-V, --version", "print the client's version and exit");
  const command = program
    .command("version")
    .description("Print the client's version, commit and runtime, and the version of every reachable agent of the lab")
    .option("--client", "the client only; do not ask any agent", false)
    .option("--state-dir <dir>", "the lab whose agents to ask", DEFAULT_STATE_DIR)
    .option("--kubeconfig <path>", "also list a cluster's agent pods and their images")
    .option("--context <name>", "kubeconfig context (implies the cluster)")
    .option("--namespace <ns>", "the cluster's flatnet namespace", DEFAULT_KUBE_TARGET.namespace);
  addExamples(addOutputOption(command), "flatnet version", "flatnet version --client -o json", "flatnet version -o yaml --state-dir /tmp/my-lab", "flatnet version --context prod")
    .action(async (options: OutputFlags & { client: boolean; stateDir: string; kubeconfig?: string; context?: string; namespace: string }) => {
      const report: VersionReport = options.client ? { client: buildInfo(), lab: null, agents: [] } : await collectVersions(options.stateDir);
      if (!options.client && (options.kubeconfig !== undefined || options.context !== undefined)) {
        try {
          const client = KubeClient.load(options); // reads only kubeconfig and context; undefined means the default
          report.cluster = { name: client.serverName, namespace: options.namespace, agents: await clusterAgentVersions(client, options.namespace) };
        } catch (error) {
          process.stderr.write(`flatnet version: the cluster's agents: ${(error as Error).message}\n`);
          process.exitCode = 1;
        }
      }
      const format = outputFormat(options);
      process.stdout.write(format === "json" || format === "yaml" ? renderDocument(report, format) : renderVersions(report));
    });
}
