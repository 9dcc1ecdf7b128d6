import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { dirname, join, resolve } from "node:path";
import { attachNamespace, globalAddresses, setSysctls } from "../linux/index.ts";
import { formatCidr, nthSubnet, parseCidr, type LabAgent, type LabNode, type LabPod } from "@flatnet/core";
import { parseNetworkConfig, type NetworkConfig } from "../config/network-config.ts";
import { nodeProbeSocket } from "../probe/node-responder.ts";
import { agentPaths } from "./agent-process.ts";
import { containerRun, type DeployImage, type DeployManifests, type DeployNode, type HttpProbe, loadDeployManifests } from "./deploy-manifest.ts";
import { exportImage, inNodeHost, nodeHostPodman, nodeRunRoot, prepareVolumes, runInitContainer, startNodeHost, type NodeHost } from "./deploy-node.ts";
import { LabError } from "./errors.ts";
import { run } from "./exec.ts";
import { buildPodImage, POD_IMAGE } from "./pod-image.ts";
import { podImageDir, responderSocket, type PodSlot } from "./names.ts";
import { podRunArgs } from "./podman.ts";
import { isRecordedProcessAlive, stopRecordedProcess } from "./supervisor.ts";
import { waitFor } from "../wait.ts";

// `lab up --deploy`: each lab node is a host running the DaemonSet of deploy/*.yaml as kubelet would (install-cni,
// then the agent, from the image, under the node's podman), against a Kubernetes API server the lab is given; the
// lab plays kubelet and kube-controller-manager for the Node objects (registration, spec.podCIDRs).

/** What `lab up --deploy` needs: the API server (a unix socket), the manifests' directory, the image. */
export interface DeployOptions {
  /** An HTTP Kubernetes API on a unix socket: the fake of test/, or `kubectl proxy --unix-socket PATH`. */
  kubeApiSocket: string;
  deployDir: string;
  image?: string;
}

export const DEFAULT_DEPLOY_IMAGE = "localhost/flatnet:dev";
/** Where each node reaches the API server: its own loopback, relayed to the socket. */
const NODE_API_PORT = 6443;
const nodeKubeconfig = JSON.stringify({
  apiVersion: "v1",
  kind: "Config",
  // plain http on the node's loopback (the relay); client-node wants TLS verification off for http.
  clusters: [{ name: "lab", cluster: { server: `http://127.0.0.1:${NODE_API_PORT}`, "insecure-skip-tls-verify": true } }],
  users: [{ name: "lab", user: { token: "lab" } }],
  contexts: [{ name: "lab", context: { cluster: "lab", user: "lab" } }],
  "current-context": "lab",
});

const deployRoot = (stateDir: string): string => join(stateDir, "deploy");
const nodeDirs = (stateDir: string, node: string) => ({ hostRoot: join(deployRoot(stateDir), node, "root"), podDir: join(deployRoot(stateDir), node, "pod") });
const hostFile = (stateDir: string, node: string): string => join(deployRoot(stateDir), node, "host.json");

/** Whether the lab in `stateDir` was built with --deploy (its nodes run the DaemonSet). */
export const isDeployLab = (stateDir: string): boolean => existsSync(deployRoot(stateDir));

/** Commands that manage agents as lab processes refuse a --deploy lab (its agents are the DaemonSet's containers). */
export function refuseOnDeployLab(stateDir: string, command: string): void {
  if (isDeployLab(stateDir)) throw new LabError("ERR_LAB_INVALID_OPTION", `lab ${command} does not run on a lab built with --deploy (its agents are the DaemonSet's containers); lab down, then lab up without --deploy`);
}

/** The first directory holding daemonset.yaml among `start` and its parents' deploy/ (a checkout's deploy/). */
export function findDeployDir(start: string = process.cwd()): string {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    for (const candidate of [dir, join(dir, "deploy")]) if (existsSync(join(candidate, "daemonset.yaml"))) return candidate;
    if (dirname(dir) === dir) throw new LabError("ERR_LAB_INVALID_OPTION", `no deploy/daemonset.yaml in ${resolve(start)} or its parents; name the manifests' directory: --deploy DIR`);
  }
}

/** The image's root filesystem, exported once per image id outside any state dir: `lab down` keeps it, a rebuilt image gets a fresh one. */
export async function exportImageOnce(image: string): Promise<DeployImage> {
  const id = await run("podman", ["image", "inspect", "--format", "{{.Id}}", image], { allowFailure: true });
  if (id.code !== 0) throw new LabError("ERR_LAB_RUNTIME", `image ${image} is not in podman's storage; build it with "npm run image"`);
  return exportImage(image, join("/var/tmp/flatnet-deploy-image", id.stdout.trim().slice(0, 12)));
}

/** A prepared deployment: the manifests read once, the image's root filesystem exported once (cached by image id). */
export interface Deployment {
  options: DeployOptions;
  manifests: DeployManifests;
  image: DeployImage;
  /** The ConfigMap's net-conf.json (cluster CIDRs, per-node masks), parsed once with the agent's own schema. */
  network: NetworkConfig;
}

export async function prepareDeployment(stateDir: string, options: DeployOptions): Promise<Deployment> {
  if (!existsSync(options.kubeApiSocket)) throw new LabError("ERR_LAB_INVALID_OPTION", `--kube-api-socket "${options.kubeApiSocket}" does not exist; --deploy needs a Kubernetes API on a unix socket (e.g. kubectl proxy --unix-socket PATH)`);
  const manifests = loadDeployManifests(options.deployDir);
  const network = deployedNetworkConfig(manifests, options.deployDir);
  const image = await exportImageOnce(options.image ?? DEFAULT_DEPLOY_IMAGE);
  await mkdir(deployRoot(stateDir), { recursive: true });
  return { options, manifests, image, network };
}

/** The ConfigMap's net-conf.json as the agent will read it; a bad one is refused here, naming the key and the rule. */
function deployedNetworkConfig(manifests: DeployManifests, deployDir: string): NetworkConfig {
  const source = `${join(deployDir, "configmap.yaml")} net-conf.json`;
  try {
    return parseNetworkConfig(JSON.parse(manifests.configMap.data?.["net-conf.json"] ?? ""), source);
  } catch (error) {
    const message = error instanceof SyntaxError ? `${source}: not JSON (${error.message})` : (error as Error).message;
    throw new LabError("ERR_LAB_INVALID_OPTION", message, { cause: error });
  }
}

/**
 * One node as a Kubernetes node: forwarding on (the node admin's sysctl.d), its host (init, mount and PID
 * namespaces), a relay from its loopback to the API server, its Node object registered with spec.podCIDRs, then the
 * DaemonSet's init container to completion and its agent container. The lab's agent (and node responder) socket
 * paths link to the agent's, so `lab status`, `lab check` and the rest talk to it as to any lab agent.
 */
export async function deployAgent(stateDir: string, node: LabNode, deployment: Deployment): Promise<LabAgent> {
  const hostIp = node.underlayIps[0];
  if (hostIp === undefined) throw new Error(`invariant: node ${node.name} has an underlay IP`);
  await setSysctls(node.netns, { "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1" });
  const { hostRoot, podDir } = nodeDirs(stateDir, node.name);
  const host = await startNodeHost(node.netns, hostRoot);
  await writeFile(hostFile(stateDir, node.name), JSON.stringify(host)); // next to hostRoot, made by startNodeHost
  const relay = spawn("nsenter", [`--target=${host.pid}`, "--net", "--mount", "--pid", "socat", `TCP-LISTEN:${NODE_API_PORT},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${resolve(deployment.options.kubeApiSocket)}`], { stdio: "ignore", detached: true });
  relay.unref();
  await registerNode(deployment, node, hostIp);
  const target: DeployNode = { name: node.name, hostIp, hostRoot, podDir };
  await runInitContainer(host, deployment.manifests, "install-cni", target, deployment.image, nodeKubeconfig);
  const agent = containerRun(deployment.manifests, "agent", target, deployment.image, nodeKubeconfig);
  await prepareVolumes(agent);
  const log = join(podDir, `${agent.name}.log`);
  const [command, ...rest] = agent.runArgs;
  // kubelet keeps container logs on the node (/var/log/pods); here next to the pod's volumes.
  await nodeHostPodman(host, hostRoot, [command ?? "run", "-d", "--log-driver", "k8s-file", "--log-opt", `path=${log}`, ...rest]);
  const { socket } = agentPaths(stateDir, node.name);
  await mkdir(dirname(socket), { recursive: true });
  // The agent's API socket and its node responder's control socket (`lab check`'s node endpoints), as the lab names them.
  const inNode = join(hostRoot, socketInManifest(deployment.manifests));
  for (const [link, target] of [[socket, inNode], [nodeProbeSocket(socket), nodeProbeSocket(inNode)]] as const) {
    await rm(link, { force: true });
    await symlink(target, link);
  }
  return { pid: host.pid, startTime: host.startTime, socket, log };
}

/** Runs the agent container's probes as kubelet does, from the node: readiness until it passes, then liveness once. */
export async function waitDeployedReady(stateDir: string, node: LabNode, deployment: Deployment, timeoutMs: number): Promise<void> {
  const host = await readHost(stateDir, node.name);
  const { hostRoot, podDir } = nodeDirs(stateDir, node.name);
  const probes = containerRun(deployment.manifests, "agent", { name: node.name, hostIp: node.underlayIps[0] ?? "", hostRoot, podDir }, deployment.image, nodeKubeconfig).probes;
  const readiness = probes.filter((probe) => probe.kind === "readiness");
  const passes = async (probe: HttpProbe) => (await inNodeHost(host, "curl", ["-sf", "-o", "/dev/null", "-m", String(probe.timeoutSeconds), probe.url], { allowFailure: true })).code === 0;
  const ready = await waitFor(
    async () => {
      if (!(await isRecordedProcessAlive(host))) throw new LabError("ERR_LAB_AGENT", `node ${node.name}'s host (pid ${host.pid}) exited`);
      const state = await nodeHostPodman(host, hostRoot, ["inspect", "--format", "{{.State.Status}}", `${deployment.manifests.daemonSet.metadata.name}-${node.name}-agent`], { allowFailure: true });
      if (state.stdout.trim() === "exited") throw new LabError("ERR_LAB_AGENT", `agent container on ${node.name} exited; see ${join(podDir, "agent.log")}`);
      for (const probe of readiness) if (!(await passes(probe))) return false;
      return true;
    },
    { timeoutMs, maxIntervalMs: 500 },
  );
  if (!ready) throw new LabError("ERR_LAB_TIMEOUT", `agent container on ${node.name} not Ready by its readinessProbe (${readiness.map((p) => p.url).join(", ")}) within ${timeoutMs} ms; see ${join(podDir, "agent.log")}`);
  for (const probe of probes.filter((p) => p.kind === "liveness")) {
    if (!(await passes(probe))) throw new LabError("ERR_LAB_AGENT", `agent container on ${node.name} Ready but its livenessProbe ${probe.url} fails`);
  }
}

/**
 * Pods of a deployed node: containers of the node's podman through the conflist install-cni wrote, each running the
 * probe responder; each container's network namespace is then named `pod.netns` on this machine.
 */
export async function startDeployedPods(stateDir: string, node: LabNode, pods: readonly PodSlot[]): Promise<LabPod[]> {
  const host = await readHost(stateDir, node.name);
  const { hostRoot } = nodeDirs(stateDir, node.name);
  const podman = (args: string[]) => nodeHostPodman(host, hostRoot, args);
  const image = await buildPodImage(podImageDir(stateDir));
  if ((await nodeHostPodman(host, hostRoot, ["image", "exists", POD_IMAGE], { allowFailure: true })).code !== 0) await podman(["import", "--quiet", image.rootfsTar, POD_IMAGE]);
  await mkdir(dirname(responderSocket(stateDir, "-")), { recursive: true });
  return Promise.all(
    pods.map(async (pod) => {
      const containerId = (await podman(podRunArgs(stateDir, node, pod, image))).stdout.trim();
      // podman's pid is the node's (its own PID namespace): find the process on this machine by its netns inode.
      const pid = (await podman(["inspect", "--format", "{{.State.Pid}}", containerId])).stdout.trim();
      const inode = (await inNodeHost(host, "stat", ["-L", "-c", "%i", `/proc/${pid}/ns/net`])).stdout.trim();
      await attachNamespace(pod.netns, await pidWithNetns(inode));
      return { ...pod, containerId, ifName: "eth0", ips: await globalAddresses(pod.netns, "eth0") };
    }),
  );
}

/** Removes every deployed node's containers (CNI DEL through the node's plugin) and podman run roots; none: nothing. */
export async function removeDeployedNodes(stateDir: string): Promise<void> {
  const nodes = existsSync(deployRoot(stateDir)) ? readdirSync(deployRoot(stateDir)) : [];
  await Promise.all(
    nodes.map(async (name) => {
      const { hostRoot } = nodeDirs(stateDir, name);
      const host = await readHost(stateDir, name).catch(() => undefined);
      if (host !== undefined && (await isRecordedProcessAlive(host))) {
        await nodeHostPodman(host, hostRoot, ["rm", "--all", "--force", "--time", "0"], { allowFailure: true });
        // Then the node's init: its death ends every process of the node's PID namespace (a conmon, the
        // `podman container cleanup` a conmon starts when its container exits), and the kernel reaps them all before the
        // init itself is gone. Removing the run root while one of them still runs lets it write the root back.
        await stopRecordedProcess(host, "SIGKILL");
      }
      await rm(nodeRunRoot(hostRoot), { recursive: true, force: true });
    }),
  );
}

/** Registers the Node as kubelet does (InternalIP) with spec.podCIDRs as kube-controller-manager allocates them. */
async function registerNode(deployment: Deployment, node: LabNode, hostIp: string): Promise<void> {
  const { clusterCidrs, nodeMaskIPv4, nodeMaskIPv6 } = deployment.network;
  const podCidrs = clusterCidrs.map((cidr) => {
    const parsed = parseCidr(cidr);
    return formatCidr(nthSubnet(parsed, parsed.family === "IPv4" ? nodeMaskIPv4 : nodeMaskIPv6, node.index));
  });
  const body = { apiVersion: "v1", kind: "Node", metadata: { name: node.name }, spec: { podCIDR: podCidrs[0], podCIDRs: podCidrs }, status: { addresses: [{ type: "InternalIP", address: hostIp }] } };
  const status = await postJson(deployment.options.kubeApiSocket, "/api/v1/nodes", body);
  if (status !== 201 && status !== 409) throw new LabError("ERR_LAB_RUNTIME", `registering Node ${node.name} at ${deployment.options.kubeApiSocket}: HTTP ${status}`);
}

function postJson(socketPath: string, path: string, body: unknown): Promise<number> {
  return new Promise((resolvePost, reject) => {
    const req = request({ socketPath, path, method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => resolvePost(res.statusCode ?? 0));
    });
    req.on("error", (error) => reject(new LabError("ERR_LAB_RUNTIME", `the Kubernetes API at ${socketPath} does not answer: ${error.message}`, { cause: error })));
    req.end(JSON.stringify(body));
  });
}

/** agent.yaml's `socket` (the ConfigMap's), the agent's API socket inside its container. */
function socketInManifest(manifests: DeployManifests): string {
  const line = /^socket:\s*(\S+)/m.exec(manifests.configMap.data?.["agent.yaml"] ?? "");
  return line?.[1] ?? "/run/flatnet/agent.sock";
}

async function pidWithNetns(inode: string): Promise<number> {
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const link = await readlink(`/proc/${entry}/ns/net`).catch(() => "");
    if (link === `net:[${inode}]`) return Number(entry);
  }
  throw new LabError("ERR_LAB_RUNTIME", `no process on this machine is in network namespace inode ${inode}`);
}

async function readHost(stateDir: string, node: string): Promise<NodeHost> {
  return JSON.parse(await readFile(hostFile(stateDir, node), "utf8")) as NodeHost;
}
