import type { Command } from "commander";
import { type BuildInfo, buildInfo } from "../build-info.ts";
import { tryGetFromAgent } from "../lab/agent-client.ts";
import { agentPaths } from "../lab/agent-process.ts";
import { DEFAULT_STATE_DIR, loadState } from "../lab/state.ts";
import { addExamples } from "./examples.ts";
import { addOutputOption, type OutputFlags, outputFormat, renderDocument } from "./output.ts";

/** One agent's answer to GET /v1/version, or why it gave none. */
export interface AgentVersion {
  source: "lab";
  node: string;
  socket: string;
  version?: BuildInfo;
  error?: string;
}

export interface VersionReport {
  client: BuildInfo;
  /** The lab's state directory when a lab was found there, else null. */
  lab: string | null;
  agents: AgentVersion[];
}

/** The client's build, and each agent of the lab in `stateDir` that answers on its socket within `timeoutMs`. */
export async function collectVersions(stateDir: string, timeoutMs = 1_000): Promise<VersionReport> {
  const state = await loadState(stateDir).catch(() => undefined);
  const agents = await Promise.all(
    (state?.nodes ?? []).map(async (node): Promise<AgentVersion> => {
      const { socket } = agentPaths(stateDir, node.name);
      const answer = await tryGetFromAgent(socket, "/v1/version", timeoutMs);
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
  return `${lines.join("\n")}\n`;
}

export function registerVersionCommand(program: Command): void {
  // kubectl's split: --version is the client only and instant; `version` also asks the agents.
  program.version(buildInfo().version, "-V, --version", "print the client's version and exit");
  const command = program
    .command("version")
    .description("Print the client's version, commit and runtime, and the version of every reachable agent of the lab")
    .option("--client", "the client only; do not ask any agent", false)
    .option("--state-dir <dir>", "the lab whose agents to ask", DEFAULT_STATE_DIR);
  addExamples(addOutputOption(command), "flatnet version", "flatnet version --client -o json", "flatnet version -o yaml --state-dir /tmp/my-lab")
    .action(async (options: OutputFlags & { client: boolean; stateDir: string }) => {
      const report = options.client ? { client: buildInfo(), lab: null, agents: [] } : await collectVersions(options.stateDir);
      const format = outputFormat(options);
      process.stdout.write(format === "json" || format === "yaml" ? renderDocument(report, format) : renderVersions(report));
    });
}
