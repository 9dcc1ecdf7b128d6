import { type Command, InvalidArgumentError, Option } from "commander";
import { LAB_BACKENDS, LAB_RUNTIMES } from "@flatnet/core";
import { defaultCheckOptions, runCheck } from "./check.ts";
import { LabError, requireRoot } from "../lab/errors.ts";
import { addNode, killAgent, labDown, labStatus, labUp, removeNode, startAgent, type LabStatus } from "../lab/lab.ts";
import { Progress } from "../lab/progress.ts";
import { DEFAULT_STATE_DIR } from "../lab/state.ts";
import { agentPaths } from "../lab/agent-process.ts";
import { DEFAULT_DEPLOY_IMAGE, findDeployDir } from "../lab/deploy.ts";
import { addExamples } from "./examples.ts";
import { addOutputOption, type OutputFlags, outputFormat, renderDocument } from "./output.ts";

const integer = (flag: string) => (value: string): number => {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError(`${flag} "${value}" must be a non-negative integer`);
  return Number(value);
};

const stateDirOption = (): Option =>
  new Option("--state-dir <dir>", "where the lab keeps its state, sockets and logs").default(DEFAULT_STATE_DIR);

/** One line on stderr and a non-zero exit for what a user can fix; a bug keeps its stack trace for the report. */
async function guarded(command: string, task: () => Promise<number | void>): Promise<void> {
  try {
    requireRoot("this command", `flatnet lab ${command}`);
    process.exitCode = (await task()) ?? 0;
  } catch (error) {
    const known = error instanceof LabError || (error instanceof Error && "code" in error && typeof error.code === "string");
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`flatnet lab ${command}: ${message}\n`);
    const code = (error as { code?: unknown }).code;
    const builtSomething = !["ERR_LAB_INVALID_OPTION", "ERR_LAB_INVALID_PREFIX", "ERR_LAB_BUSY", "ERR_LAB_NOT_FOUND", "ERR_LAB_NEEDS_ROOT"].includes(String(code));
    if ((command === "up" || command === "add-node") && builtSomething) {
      process.stderr.write(`(what was built stays for inspection: "flatnet lab down" removes it, "flatnet lab up" rebuilds)\n`);
    }
    if (!known && process.env.FLATNET_DEBUG === "1" && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = 1;
  }
}

const progressToStdout = (): Progress => new Progress((line) => process.stdout.write(line));

/** A lab command whose outcome is its progress lines and exit code 0 (errors as `guarded` reports them). */
const withProgress = (command: string, task: () => Promise<unknown>): Promise<void> => guarded(command, () => task().then(() => {}));

export function registerLabCommand(program: Command): void {
  const lab = addExamples(
    program
      .command("lab")
      .description("A flat pod network in network namespaces on this machine: nodes, agents, pods, and a connectivity check"),
    "flatnet lab up && flatnet lab check && flatnet lab down   # as root",
    "flatnet lab status -o wide",
  );

  addExamples(
    lab.command("up"),
    "flatnet lab up                                   # 3 nodes x 2 pods, host-gw (root)", "flatnet lab up --nodes 4 --backend vxlan --dual-stack", "flatnet lab up --datastore etcd --state-dir /tmp/lab2 --prefix fn-b-",
  )
    .description("build the lab and wait until every agent is ready and routes converged (same flags on a healthy lab: no-op)")
    .addOption(new Option("--nodes <n>", "number of nodes").default(3).argParser(integer("--nodes")))
    .addOption(new Option("--pods-per-node <n>", "pods on each node").default(2).argParser(integer("--pods-per-node")))
    .addOption(new Option("--backend <backend>", "datapath backend").choices([...LAB_BACKENDS]).default("host-gw"))
    .addOption(new Option("--runtime <runtime>", "how pods are made: namespaces attached by CNI ADD, or podman containers (docs/runtimes.md)").choices([...LAB_RUNTIMES]).default("netns"))
    .option("--dual-stack", "IPv4 and IPv6 pods and underlay", false)
    .option("--prefix <prefix>", "prefix of every namespace the lab creates", "fn-")
    .option("--resync-interval <duration>", "agents' periodic resync (e.g. 10s)")
    .addOption(new Option("--datastore <kind>", "where nodes meet: embedded SQLite or etcd in the underlay namespace").choices(["embedded", "etcd"]).default("embedded"))
    .option("--deploy [dir]", "run the DaemonSet of DIR/*.yaml (default: the checkout's deploy/) on every node under podman (docs/runtimes.md)")
    .option("--kube-api-socket <path>", "with --deploy: the Kubernetes API the agents use, on a unix socket (e.g. kubectl proxy --unix-socket)")
    .option("--image <ref>", "with --deploy: the image the DaemonSet runs", DEFAULT_DEPLOY_IMAGE)
    .addOption(stateDirOption())
    .action((options, command: Command) =>
      guarded("up", async () => {
        // The rest are labUp's own options: nodes, podsPerNode, backend, runtime, dualStack, prefix, resyncInterval, datastore, stateDir.
        const { deploy, kubeApiSocket, image, ...shape } = options;
        if (deploy !== undefined && kubeApiSocket === undefined) throw new LabError("ERR_LAB_INVALID_OPTION", "--deploy needs --kube-api-socket PATH: the agents' datastore is a Kubernetes API server");
        if (deploy !== undefined && command.getOptionValueSource("runtime") === "cli" && options.runtime !== "podman") throw new LabError("ERR_LAB_INVALID_OPTION", `--deploy runs pods with podman (the node's runtime); --runtime "${options.runtime}" does not go with it`);
        await labUp({
          ...shape,
          ...(deploy === undefined ? {} : { deploy: { deployDir: deploy === true ? findDeployDir() : deploy, kubeApiSocket, image } }),
          progress: progressToStdout(),
        });
        const where = options.stateDir === DEFAULT_STATE_DIR ? "" : ` --state-dir ${options.stateDir}`;
        process.stdout.write(`next: flatnet lab check${where}   (also: status, add-node, kill-agent NODE, down)\n`);
      }),
    );

  addExamples(
    lab.command("down"),
    "flatnet lab down", "flatnet lab down --prefix fn-b-   # also after a crash left namespaces behind",
  )
    .description("remove everything the lab made, and only that (also after a crash)")
    .option("--prefix <prefix>", "prefix to scan for leftover namespaces (default: the lab's, or fn-)")
    .addOption(stateDirOption())
    .action((options: { stateDir: string; prefix?: string }) => withProgress("down", () => labDown({ ...options, progress: progressToStdout() })));

  const statusCommand = addExamples(
    lab.command("status"),
    "flatnet lab status", "flatnet lab status -o wide      # also each pod's namespace and each agent's socket and log", "flatnet lab status -o json | jq '.nodes[].podCidrs'",
  )
    .description("nodes, pod CIDRs, pods and IPs, agent health")
    .addOption(stateDirOption());
  addOutputOption(statusCommand, ["text", "wide", "json", "yaml"])
    .action((options: OutputFlags & { stateDir: string }) =>
      guarded("status", async () => {
        const status = await labStatus({ stateDir: options.stateDir });
        const format = outputFormat(options);
        process.stdout.write(format === "json" || format === "yaml" ? renderDocument(status, format) : renderStatus(status, format === "wide"));
        return status.nodes.every((node) => node.agent.ready) ? 0 : 1;
      }),
    );

  const labCheck = addExamples(
    lab.command("check"),
    "flatnet lab check", "flatnet lab check -o json > report.json",
  )
    .description("probe every ordered pod pair (TCP, UDP, MTU, no NAT); every responder must see the sender's pod IP")
    .addOption(stateDirOption());
  addOutputOption(labCheck, ["text", "wide", "json", "yaml"])
    // The same run and report as `flatnet check --state-dir`.
    .action((options: OutputFlags & { stateDir: string }) =>
      guarded("check", () => runCheck(defaultCheckOptions({ stateDir: options.stateDir, output: outputFormat(options) }))),
    );

  addExamples(
    lab.command("add-node"),
    "flatnet lab add-node",
  )
    .description("join a new node (next free index) with the lab's pods per node")
    .option("--resync-interval <duration>", "the agent's periodic resync (e.g. 10s)")
    .addOption(stateDirOption())
    .action((options: { stateDir: string; resyncInterval?: string }) => withProgress("add-node", () => addNode({ ...options, progress: progressToStdout() })));

  nodeCommand(lab, "remove-node", "flatnet lab remove-node node4",
    "a node leaves: agent stopped, deregistered, namespaces removed; waits until peers dropped its routes",
    (node, options) => removeNode(node, options));
  nodeCommand(lab, "kill-agent", "flatnet lab kill-agent node2   # then: flatnet lab check (routes stay), flatnet lab start-agent node2",
    "kill a node's agent with SIGKILL (a crash; its routes stay)",
    (node, options) => killAgent(node, options));
  nodeCommand(lab, "start-agent", "flatnet lab start-agent node2",
    "start a node's agent again and wait until it is ready",
    (node, options) => startAgent(node, options))
    .option("--resync-interval <duration>", "the agent's periodic resync (e.g. 10s)");
}

/** `flatnet lab <name> <node>`: a command that acts on one node of the lab. */
function nodeCommand(
  lab: Command,
  name: string,
  example: string,
  description: string,
  act: (node: string, options: { stateDir: string; resyncInterval?: string; progress: Progress }) => Promise<unknown>,
): Command {
  return addExamples(lab.command(name), example)
    .description(description)
    .argument("<node>", "node name, e.g. node2")
    .addOption(stateDirOption())
    .action((node: string, options: { stateDir: string; resyncInterval?: string }) => withProgress(name, () => act(node, { ...options, progress: progressToStdout() })));
}

function renderStatus(status: LabStatus, wide = false): string {
  const lines = [
    `lab "${status.prefix}" in ${status.stateDir}: backend ${status.backend}${status.dualStack ? ", dual-stack" : ""}, cluster ${status.clusterCidrs.join(" ")}`,
  ];
  for (const node of status.nodes) {
    const agent = node.agent.running
      ? `agent pid ${node.agent.pid} ${node.agent.ready ? "ready" : node.agent.healthy ? "healthy, not ready" : "not answering"}`
      : "agent DOWN";
    const paths = wide ? agentPaths(status.stateDir, node.name) : undefined;
    lines.push(`${node.name.padEnd(7)} ${node.netns.padEnd(14)} underlay ${node.underlayIps.join(" ")}  pods ${node.podCidrs.join(" ")}  ${agent}${paths ? `  socket ${paths.socket}  log ${paths.log}` : ""}`);
    for (const pod of node.pods) lines.push(`  ${pod.name.padEnd(14)} ${pod.ips.join(" ")}${wide ? `  netns ${pod.netns}` : ""}`);
  }
  return lines.join("\n") + "\n";
}
