import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { containerRun, type DeployImage, type DeployManifests, type DeployNode } from "./deploy-manifest.ts";
import { LabError } from "./errors.ts";
import { containersConf } from "./podman.ts";
import { run, type RunResult } from "./exec.ts";
import { processStartTime } from "./supervisor.ts";
import { waitFor } from "../wait.ts";

// `lab up --deploy`: a lab node is a host for the DaemonSet. Its network namespace plus its own mount and PID
// namespaces: pid 1 is the node's init (so the install-cni symlink /run/netns/host -> /proc/1/ns/net names the node's
// network namespace, never this machine's), and /run/netns, /run/flatnet are the node's directories under its root.

/** The node's init, by PID (this machine's) and start time, so a reused PID is never signalled. */
export interface NodeHost {
  pid: number;
  startTime: string;
}

/** Starts the node's init in `netns` with a private mount and PID namespace and the node's /run directories bound. */
export async function startNodeHost(netns: string, hostRoot: string): Promise<NodeHost> {
  const netnsDir = join(hostRoot, "run", "netns");
  const flatnetDir = join(hostRoot, "run", "flatnet");
  const ready = join(hostRoot, "init-ready");
  await Promise.all([mkdir(netnsDir, { recursive: true }), mkdir(flatnetDir, { recursive: true }), rm(ready, { force: true })]);
  // The node's /run/netns is a shared mount, a peer of its directory: the pods' netns the node's podman mounts there
  // propagate into the agent container's volume of that directory (HostToContainer).
  const script = [
    `mount --bind ${netnsDir} ${netnsDir}`,
    `mount --make-shared ${netnsDir}`,
    `mount --bind ${netnsDir} /run/netns`,
    "mkdir -p /run/flatnet",
    `mount --bind ${flatnetDir} /run/flatnet`,
    `touch ${ready}`,
    "exec sleep infinity",
  ].join(" && ");
  const child = spawn("nsenter", [`--net=/run/netns/${netns}`, "unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "slave", "sh", "-c", script], { stdio: "ignore", detached: true });
  child.unref();
  const unsharePid = child.pid;
  if (unsharePid === undefined) throw new LabError("ERR_LAB_RUNTIME", `could not start the node init of ${netns} (nsenter, unshare)`);
  let pid: number | undefined;
  const started = await waitFor(
    async () => {
      if (!existsSync(ready)) return false;
      const children = await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8").catch(() => "");
      pid = Number(children.trim().split(" ")[0]);
      return Number.isInteger(pid) && pid > 0;
    },
    { timeoutMs: 10_000, maxIntervalMs: 50 },
  );
  const startTime = pid === undefined ? undefined : await processStartTime(pid);
  if (!started || pid === undefined || startTime === undefined) throw new LabError("ERR_LAB_RUNTIME", `the node init of ${netns} did not start within 10 s (unshare pid ${unsharePid})`);
  return { pid, startTime };
}

/** Runs a command inside the node: its network, mount and PID namespaces. */
export function inNodeHost(host: NodeHost, command: string, args: readonly string[], options: { timeoutMs?: number; allowFailure?: boolean; env?: Record<string, string> } = {}): Promise<RunResult> {
  return run("nsenter", [`--target=${host.pid}`, "--net", "--mount", "--pid", command, ...args], { timeoutMs: 120_000, ...options });
}

/** The node's podman (own storage, runc, cgroupfs, CNI from the node's /opt/cni/bin and /etc/cni/net.d). */
export async function nodeHostPodman(host: NodeHost, hostRoot: string, args: readonly string[], options: { allowFailure?: boolean } = {}): Promise<RunResult> {
  const dir = join(hostRoot, "var", "lib", "podman");
  const conf = join(dir, "containers.conf");
  if (!existsSync(conf)) {
    await mkdir(join(dir, "tmp"), { recursive: true });
    // Debian's reference plugins (portmap, chained in the conflist) stand for what a node's /opt/cni/bin also holds.
    await writeFile(conf, containersConf([join(hostRoot, "opt", "cni", "bin"), "/usr/lib/cni"]));
  }
  const globals = ["--root", join(dir, "root"), "--runroot", nodeRunRoot(hostRoot), "--tmpdir", join(dir, "tmp"), "--storage-driver", "vfs", "--network-config-dir", join(hostRoot, "etc", "cni", "net.d")];
  return inNodeHost(host, "podman", [...globals, ...args], { ...options, env: { CONTAINERS_CONF: conf } });
}

/** podman's run root for a node: a short path (podman refuses one over 50 characters), one per node root. */
export const nodeRunRoot = (hostRoot: string): string => `/tmp/flatnet-podman-${createHash("sha256").update(hostRoot).digest("hex").slice(0, 12)}`;

/** Runs one init container of the DaemonSet to completion on the node; a non-zero exit is an error with its output. */
export async function runInitContainer(host: NodeHost, manifests: DeployManifests, name: string, node: DeployNode, image: DeployImage, kubeconfig: string): Promise<void> {
  const container = containerRun(manifests, name, node, image, kubeconfig);
  await prepareVolumes(container);
  const [command, ...rest] = container.runArgs;
  const result = await nodeHostPodman(host, node.hostRoot, [command ?? "run", "--rm", ...rest], { allowFailure: true });
  if (result.code !== 0) throw new LabError("ERR_LAB_RUNTIME", `init container ${name} on ${node.name} exited ${result.code}: ${(result.stderr || result.stdout).trim()}`);
}

/** Creates the container's hostPath and emptyDir directories and writes its configMap and token files. */
export async function prepareVolumes(container: { directories: string[]; files: { path: string; content: string }[] }): Promise<void> {
  for (const directory of container.directories) await mkdir(directory, { recursive: true });
  for (const file of container.files) {
    await mkdir(dirname(file.path), { recursive: true });
    await writeFile(file.path, file.content);
  }
}

/**
 * The image's root filesystem under `dir` (exported once from this machine's podman storage) with its config's env
 * and working dir: each node's podman runs it with --rootfs, so no 600 MB copy lands in every node's storage.
 */
export async function exportImage(image: string, dir: string): Promise<DeployImage> {
  const rootfs = join(dir, "rootfs");
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(rootfs, { recursive: true });
    const id = (await run("podman", ["create", image, "true"])).stdout.trim();
    try {
      await run("sh", ["-c", `podman export "$1" | tar -x -C "$2"`, "sh", id, rootfs], { timeoutMs: 300_000 });
    } finally {
      await run("podman", ["rm", id], { allowFailure: true });
    }
    const config = (await run("podman", ["image", "inspect", "--format", "{{json .Config}}", image])).stdout;
    await writeFile(configFile, config);
  }
  const config = JSON.parse(await readFile(configFile, "utf8")) as { Env?: string[]; WorkingDir?: string };
  return { reference: ["--rootfs", rootfs], env: config.Env ?? [], ...(config.WorkingDir ? { workingDir: config.WorkingDir } : {}) };
}
