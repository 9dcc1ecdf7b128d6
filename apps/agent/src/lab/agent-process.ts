import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { LabAgent, LabBackend, LabNode, LabState } from "@flatnet/core";
import { z } from "zod";
import { getJson } from "../http/client.ts";
import { createDatastore } from "../datastore/factory.ts";
import { LAB_ETCD_ENDPOINT } from "./lab-etcd.ts";
import { LabError } from "./errors.ts";
import { flatnetCommand, startInNamespace } from "./supervisor.ts";

// Everything the lab knows about `flatnet agent`'s command line and API lives in this file.

export interface AgentPaths {
  socket: string;
  log: string;
  store: string;
}

export function agentPaths(stateDir: string, node: string): AgentPaths {
  return {
    socket: join(stateDir, "agents", `${node}.sock`),
    log: join(stateDir, "logs", `${node}.log`),
    store: join(stateDir, "store", "flatnet.db"),
  };
}

export interface LabNetworkConfig {
  clusterCidrs: string[];
  backend: LabBackend;
}

async function makeAgentDirs(stateDir: string): Promise<void> {
  for (const dir of ["agents", "logs"]) await mkdir(join(stateDir, dir), { recursive: true });
}

/** Creates the lab's embedded datastore holding the network config (stored once; agents open the same file). */
export async function initialiseStore(stateDir: string, config: LabNetworkConfig): Promise<void> {
  await makeAgentDirs(stateDir);
  const store = await createDatastore({ kind: "embedded", path: agentPaths(stateDir, "-").store, networkConfig: config });
  await store.close();
}

type LabDatastore = NonNullable<LabState["datastore"]>;

// The datastore is required (undefined: a state file from before etcd labs, embedded): a restart that forgot it
// would start the agent on an empty embedded store.
export function agentArguments(stateDir: string, node: LabNode, resyncInterval: string | undefined, datastore: LabDatastore | undefined): string[] {
  const paths = agentPaths(stateDir, node.name);
  return [
    // The agent's pod IP metrics read the node's CNI IPAM database (installCni's <root>/ipam/<network>).
    "env",
    `FLATNET_POD_IPAM_DB=${join(stateDir, "cni", node.name, "ipam", "flatnet", "ipam.db")}`,
    // re-read every second (a scrape never reads it): a lab's figures follow its pods closely
    "FLATNET_POD_IP_REFRESH_MS=1000",
    ...flatnetCommand(),
    "agent",
    "--node", node.name,
    "--netns", node.netns,
    ...((datastore ?? "embedded") === "etcd"
      ? ["--datastore", "etcd", "--etcd-endpoints", LAB_ETCD_ENDPOINT, "--network-config", join(stateDir, "net-conf.json")]
      : ["--datastore", "embedded", "--store", paths.store]),
    "--underlay-device", "eth0",
    "--socket", paths.socket,
    ...(resyncInterval === undefined ? [] : ["--resync-interval", resyncInterval]),
  ];
}

/** Starts `flatnet agent` inside the node's namespace, logging to a file in the state dir. */
export async function startAgentProcess(stateDir: string, node: LabNode, resyncInterval: string | undefined, datastore: LabDatastore | undefined): Promise<LabAgent> {
  const paths = agentPaths(stateDir, node.name);
  await makeAgentDirs(stateDir);
  const main = flatnetCommand()[1] ?? "";
  if (!existsSync(main)) {
    throw new LabError("ERR_LAB_NOT_BUILT", `flatnet is not built: "${main}" does not exist; run "npm run build -w @flatnet/agent"`);
  }
  const { pid, startTime } = await startInNamespace({ netns: node.netns, args: agentArguments(stateDir, node, resyncInterval, datastore), logPath: paths.log });
  return { pid, startTime, socket: paths.socket, log: paths.log };
}

const agentNodeSchema = z.looseObject({
  name: z.string(),
  podCidrs: z.array(z.string()).min(1),
  podMtu: z.number().int().positive(),
});

export type AgentNode = z.infer<typeof agentNodeSchema>;

/** The agent's own view of its node (`GET /v1/node`): pod CIDRs and pod MTU. */
export async function fetchAgentNode(stateDir: string, node: LabNode): Promise<AgentNode> {
  const { socket } = agentPaths(stateDir, node.name);
  const response = await getJson({ socketPath: socket }, "/v1/node");
  const parsed = agentNodeSchema.safeParse(response.body);
  if (response.status !== 200 || !parsed.success) {
    throw new LabError(
      "ERR_LAB_AGENT",
      `agent ${node.name} answered GET /v1/node with ${response.status} ${JSON.stringify(response.body)}; expected name, podCidrs and podMtu`,
    );
  }
  return parsed.data;
}

/** Removes a node from the lab's datastore, so its peers drop its routes. */
export async function deregisterNode(stateDir: string, name: string): Promise<void> {
  const store = await createDatastore({ kind: "embedded", path: agentPaths(stateDir, name).store });
  try {
    await store.remove(name);
  } finally {
    await store.close();
  }
}
