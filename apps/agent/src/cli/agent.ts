import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { DEFAULT_VXLAN_DEVICE } from "@flatnet/core";
import { resolveMetricsAddress } from "../api/index.ts";
import { DURATION_FORMS, durationMs } from "../config/duration.ts";
import { parseNetworkConfig } from "../config/network-config.ts";
import { addClusterOptions, applyAgentSettings, datastoreOptionsFor, type ClusterFlags } from "../datastore/datastore-options.ts";
import { createDatastore } from "../datastore/factory.ts";
import { type UnderlayChoice, cleanupNode } from "../linux/index.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogLevel, createLogger, resolveLogFormat } from "../log.ts";
import { NodeAgent } from "../node-agent/node-agent.ts";
import { addExamples } from "./examples.ts";

export interface AgentOptions extends ClusterFlags {
  node?: string;
  netns: string;
  datastore: string;
  store?: string;
  networkConfig?: string;
  underlayDevice?: string;
  underlayCanReach?: string;
  underlayIp: string[];
  /** The node's own address (Kubernetes: its InternalIP, the downward API's status.hostIP): finds the underlay device. */
  nodeIp?: string;
  socket?: string;
  resyncInterval: string;
  leaseTtl: string;
  masquerade: boolean;
  vxlanDevice: string;
  logLevel: string;
  /** json or text; default: FLATNET_LOG_FORMAT, else text on a terminal, JSON otherwise. */
  logFormat?: string;
  cleanup?: boolean;
  /** Port of the node's probe responder on its underlay IPs (`flatnet check` node endpoints); "0" disables it. */
  probePort?: string;
}

/** A command-line value that cannot be right; printed as one line on stderr with exit code 2. */
export class UsageError extends Error {
  readonly code = "ERR_USAGE";
  override readonly name = "UsageError";
}

export function registerAgentCommand(program: Command): void {
  const command = program
    .command("agent")
    .description("Run the node agent: register, program routes for every peer, keep them in sync, serve the API")
    .option("--node <name>", "this node's name (required unless --cleanup)")
    .option("--netns <ns>", "the network namespace to program (a name in /run/netns; required)")
    .addOption(new Option("--datastore <kind>", "where nodes meet").choices(["embedded", "etcd", "kubernetes"]).default("embedded"))
    .option("--store <path>", "the embedded store's SQLite file (shared by the agents of one machine)")
    .option("--network-config <path>", "JSON network config stored when the store has none (clusterCidrs, backend, ...)")
    .option("--underlay-device <dev>", "the underlay interface in the namespace (default: found, see --underlay-can-reach)")
    .option("--underlay-can-reach <ip>", "use the interface of the route to this address as the underlay (as flannel's --iface-can-reach)")
    .option("--node-ip <ip>", "the node's own address (Kubernetes InternalIP); without --underlay-device the interface holding it is the underlay")
    .option("--underlay-ip <ip>", "use this underlay address (repeat per family); default: the device's first per family", (ip: string, previous: string[]) => [...previous, ip], [])
    .option("--socket <path>", "the API's unix socket (default /run/flatnet/<node>.sock)")
    .option("--resync-interval <duration>", "periodic resync that repairs drift (e.g. 10s, 500ms)", "10s")
    .option("--lease-ttl <duration>", "a node not heartbeating this long leaves the cluster", "30s")
    .option("--no-masquerade", "do not masquerade traffic leaving the cluster CIDRs")
    .option("--vxlan-device <name>", "the VXLAN device's name", DEFAULT_VXLAN_DEVICE)
    .option("--probe-port <port>", "TCP+UDP port of the node's probe responder on its underlay IPs (flatnet check); 0 disables it", "7471")
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS).default("info"))
    .addOption(new Option("--log-format <format>", "log lines as JSON or text (default: $FLATNET_LOG_FORMAT, else text on a terminal, JSON otherwise)").choices([...LOG_FORMATS]))
    .option("--cleanup", "remove what the agent owns in the namespace (routes proto 77, VXLAN device, nft table), then exit");
  addExamples(
    addClusterOptions(command),
    "flatnet agent --node n1 --netns fn-node1 --store /var/lib/flatnet/flatnet.db   # (root)",
    "flatnet agent --datastore kubernetes --node $NODE_NAME --netns host           # as the DaemonSet runs it",
    "flatnet agent --netns fn-node1 --cleanup                                      # remove what the agent programmed",
  ).action(async (flags: AgentOptions, self: Command) => {
      try {
        const options = applyAgentSettings(flags, self);
        process.exitCode = await runAgent(options);
      } catch (error) {
        const code = (error as { code?: string }).code;
        process.stderr.write(`flatnet agent: ${(error as Error).message}\n`);
        process.exitCode = code === "ERR_USAGE" || code === "ERR_INVALID_CONFIG" ? 2 : 1;
      }
    });
}

/** A duration flag in milliseconds (see durationMs); a usage error naming the flag when it is not one, or is zero. */
export function parseDuration(text: string, flag: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new UsageError(`${flag} "${text}" is not a duration; use ${DURATION_FORMS}`);
  if (ms <= 0) throw new UsageError(`${flag} "${text}" must be longer than zero`);
  return ms;
}

/** Runs the agent until SIGTERM/SIGINT; resolves with the exit code. Routes stay programmed when it exits. */
export async function runAgent(options: AgentOptions): Promise<number> {
  if (!options.netns) throw new UsageError("--netns <ns> is required (or FLATNET_NETNS, or netns in --config)");
  const logger = createLogger({ level: options.logLevel as LogLevel, format: resolveLogFormat(options.logFormat), base: { node: options.node, netns: options.netns } });
  if (options.cleanup) {
    await cleanupNode(options.netns, { vxlanDevice: options.vxlanDevice });
    logger.info({}, "removed flatnet's routes, VXLAN device and nft table; pods left alone");
    return 0;
  }
  if (options.node === undefined || options.node === "") throw new UsageError("--node <name> is required");
  const resyncIntervalMs = parseDuration(options.resyncInterval, "--resync-interval");
  const leaseTtlMs = parseDuration(options.leaseTtl, "--lease-ttl");
  const networkConfig = options.networkConfig === undefined ? undefined : readNetworkConfig(options.networkConfig);
  const probePort = parseProbePort(options.probePort ?? "7471");
  const metricsAddress = options.metricsAddress === undefined ? undefined : await resolveMetricsAddress(options.metricsAddress, options.netns);
  await new NodeAgent({
    node: options.node,
    netns: options.netns,
    logger,
    openDatastore: () => createDatastore(datastoreOptionsFor(options, { leaseTtlMs, networkConfig })),
    leaseTtlMs,
    resyncIntervalMs,
    underlayChoice: underlayChoice(options),
    underlayIps: options.underlayIp,
    socketPath: options.socket ?? `/run/flatnet/${options.node}.sock`,
    vxlanDevice: options.vxlanDevice,
    masquerade: options.masquerade,
    probePort,
    ...(metricsAddress !== undefined ? { metricsAddress } : {}),
    ...(options.subnetFile !== undefined ? { subnetFile: options.subnetFile } : {}),
  }).run();
  return 0;
}

/** `--probe-port`: 0 (off) or a TCP/UDP port. */
export function parseProbePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--probe-port "${text}" must be an integer from 0 (off) to 65535`);
  }
  return port;
}

function readNetworkConfig(path: string) {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`--network-config "${path}" cannot be read: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--network-config "${path}" is not JSON: ${(error as Error).message}`);
  }
  return parseNetworkConfig(data, path);
}

/** The flags that choose the underlay device, in the order findUnderlayDevice tries them. */
export function underlayChoice(options: Pick<AgentOptions, "underlayDevice" | "underlayCanReach" | "underlayIp" | "nodeIp">): UnderlayChoice {
  const choice: UnderlayChoice = { ips: options.underlayIp.length > 0 ? options.underlayIp : options.nodeIp ? [options.nodeIp] : [] };
  if (options.underlayDevice) choice.device = options.underlayDevice;
  if (options.underlayCanReach) choice.canReach = options.underlayCanReach;
  return choice;
}
