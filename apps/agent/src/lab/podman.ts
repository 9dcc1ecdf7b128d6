import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { attachNamespace, globalAddresses } from "../linux/index.ts";
import { type LabNode, type LabPod } from "@flatnet/core";
import type { CniInstall } from "../cni/runtime.ts";
import { LabError } from "./errors.ts";
import { run, type RunOptions, type RunResult } from "./exec.ts";
import { ENTRY_PATH, POD_IMAGE, RESPONDER_PATH, type PodImage } from "./pod-image.ts";
import { nodeCniRoot, responderArgs, responderSocket, type PodSlot } from "./names.ts";
import { waitFor } from "../wait.ts";

// `--runtime podman`: each node has its own podman (storage, run root, containers.conf) started inside the node's
// network namespace with `nsenter --net`, not `ip netns exec`: the latter's private mount namespace remounts /sys,
// which hides this machine's cgroup v1 mounts from runc ("no cgroup mount found"), and --cgroups=disabled is crun's only.

/** The network name podman attaches (the conflist's `name`). */
export const PODMAN_NETWORK = "flatnet";

const podmanDir = (stateDir: string, node: string): string => join(stateDir, "podman", node);

// CNI backend and runc as the brief of docs/runtimes.md says; rlimits below this VM's hard limits (podman's
// default nofile/nproc of 1048576 make runc fail "error setting rlimits"); cgroupfs: there is no systemd here.
/** The containers.conf of a lab node's podman, with CNI plugins looked up in `binDirs` in order. */
export const containersConf = (binDirs: readonly string[]): string => `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = [${binDirs.map((dir) => JSON.stringify(dir)).join(", ")}]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

/** The node's podman, inside its network namespace with its own storage and the node's CNI conf dir: argv and env. */
export function nodePodmanCommand(stateDir: string, node: Pick<LabNode, "name" | "netns">): { argv: string[]; env: Record<string, string> } {
  const dir = podmanDir(stateDir, node.name);
  const confDir = join(nodeCniRoot(stateDir, node.name), "net.d");
  // vfs: the pod image is 5 MB, so a copy per container is cheap, and nothing of the storage stays mounted (overlay
  // bind-mounts its home again in every podman process, conmon's late `container cleanup` included).
  const globals = ["--root", join(dir, "root"), "--runroot", join(dir, "run"), "--tmpdir", join(dir, "tmp"), "--storage-driver", "vfs", "--network-config-dir", confDir];
  return { argv: ["nsenter", `--net=/run/netns/${node.netns}`, "podman", ...globals], env: { CONTAINERS_CONF: join(dir, "containers.conf") } };
}

/** Runs the node's podman (nodePodmanCommand) with `args`. */
export function nodePodman(stateDir: string, node: Pick<LabNode, "name" | "netns">, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { argv: [file, ...argv], env } = nodePodmanCommand(stateDir, node);
  return run(file!, [...argv, ...args], { timeoutMs: 60_000, ...options, env });
}

/**
 * `podman run` of one lab pod: the pod image running the probe responder, on the flatnet network, its control socket
 * in the lab's probe directory (bind-mounted at the same path, so the probe engine reaches it).
 */
export function podRunArgs(stateDir: string, node: LabNode, pod: PodSlot, image: PodImage): string[] {
  const probeDir = dirname(responderSocket(stateDir, "-"));
  return ["run", "-d", "--name", pod.name, "--network", PODMAN_NETWORK, "-v", `${image.responder}:${RESPONDER_PATH}:ro`, "-v", `${probeDir}:${probeDir}`, POD_IMAGE, ENTRY_PATH, ...responderArgs(stateDir, pod, node)];
}

/**
 * Starts each pod as a container of the node's podman through the installed conflist, running the probe responder;
 * the container's network namespace is then named `pod.netns` (`ip netns attach`), so `lab check` and the rest see
 * a podman pod as they see any lab pod.
 */
export async function startPodmanPods(stateDir: string, node: LabNode, install: CniInstall, image: PodImage, pods: readonly PodSlot[]): Promise<LabPod[]> {
  const dir = podmanDir(stateDir, node.name);
  if (!existsSync(join(dir, "containers.conf"))) {
    await mkdir(join(dir, "tmp"), { recursive: true });
    await writeFile(join(dir, "containers.conf"), containersConf([install.binDir]));
    await nodePodman(stateDir, node, ["import", "--quiet", image.rootfsTar, POD_IMAGE]);
  }
  // The probe engine (`lab check`) drives each responder over its control socket, bind-mounted at the same path.
  await mkdir(dirname(responderSocket(stateDir, "-")), { recursive: true });
  return Promise.all(
    pods.map(async (pod) => {
      const containerId = (await nodePodman(stateDir, node, podRunArgs(stateDir, node, pod, image))).stdout.trim();
      const { stdout } = await nodePodman(stateDir, node, ["inspect", "--format", "{{.State.Pid}}", containerId]);
      const pid = Number(stdout.trim());
      if (!Number.isInteger(pid) || pid <= 0) throw new LabError("ERR_LAB_RUNTIME", `podman container ${pod.name} on ${node.name} is not running (pid "${stdout.trim()}")`);
      await attachNamespace(pod.netns, pid);
      return { ...pod, containerId, ifName: "eth0", ips: await globalAddresses(pod.netns, "eth0") };
    }),
  );
}

/** Removes every container of the node's podman (each one's CNI DEL frees its veth and IP); no podman dir: nothing. */
export async function removePodmanPods(stateDir: string, node: Pick<LabNode, "name" | "netns">, options: RunOptions = {}): Promise<void> {
  if (!existsSync(join(podmanDir(stateDir, node.name), "containers.conf"))) return;
  await nodePodman(stateDir, node, ["rm", "--all", "--force", "--time", "0"], options);
}

/**
 * For every node podman dir in the state dir (found on disk, so also after a crash or with no readable state): removes
 * its containers, then unmounts whatever is still mounted under it (a container's shm after a crash), deepest first,
 * until nothing is, so the directory can be deleted.
 */
export async function removeAllPodmanPods(stateDir: string, netnsOf: (node: string) => string): Promise<void> {
  const root = join(stateDir, "podman");
  const nodes = await readdir(root).catch(() => [] as string[]);
  await Promise.all(nodes.map((name) => removePodmanPods(stateDir, { name, netns: netnsOf(name) }, { allowFailure: true })));
  const unmounted = await waitFor(
    async () => {
      const points = mountPointsUnder(await readFile("/proc/self/mountinfo", "utf8"), root);
      for (const point of points) await run("umount", [point], { allowFailure: true });
      return points.length === 0;
    },
    { timeoutMs: 10_000, maxIntervalMs: 200 },
  );
  if (!unmounted) throw new LabError("ERR_LAB_RUNTIME", `mounts under ${root} stay after 10 s of umount; see /proc/self/mountinfo`);
}

/** Mount points of a /proc/PID/mountinfo text strictly under `root`, deepest first (the order to unmount them). */
export function mountPointsUnder(mountinfo: string, root: string): string[] {
  // Field 5 is the mount point, with space, tab, newline and backslash escaped as octal (proc(5)).
  return mountinfo
    .split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
}

