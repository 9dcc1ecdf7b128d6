import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cidrContains, parseCidr, parseIp } from "@flatnet/core";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { labDown, labUp } from "../../apps/agent/src/lab/lab.ts";
import { buildPodImage, ENTRY_PATH, POD_IMAGE, RESPONDER_PATH } from "../../apps/agent/src/lab/pod-image.ts";
import { nodePodman } from "../../apps/agent/src/lab/podman.ts";
import { nodeCniRoot, podImageDir } from "../../apps/agent/src/lab/names.ts";
import { listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";
import { waitFor } from "../../apps/agent/src/wait.ts";
import { isRoot, podVeths, reservedPodIps, responderIdentity, skipReason, tempStateDir } from "./lab-helpers.ts";

// Debian's containerd (1.6, libcni 1.1) runs one container with `ctr run --cni` through the conflist the lab
// installed on node1: it gets an IP of node1's pod CIDR, a podman pod on node2 reaches its responder, and when the
// task ends ctr's CNI DEL frees its veth and IP. containerd is our own (temp root, state and socket), killed by PID.
// ctr reads CNI from fixed paths (/etc/cni/net.d, Debian's /usr/lib/cni), so it runs in a private mount namespace
// where the node's dirs are bind-mounted there: also the "runtime in another mount namespace" case of the worker.
const PREFIX = "fn-pr-ctr-";
const NAMESPACE = "fnpr";
skipReason("containerd lab test");

describe.skipIf(!isRoot)("containerd ctr run --cni through the lab's conflist", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
  });

  it("ADD gives the container an IP of node1's pod CIDR that a pod on node2 reaches; DEL frees its veth and IP", async () => {
    const stateDir = await tempStateDir(PREFIX);
    cleanups.push(() => labDown({ stateDir, prefix: PREFIX }));
    const state = await labUp({ nodes: 2, podsPerNode: 1, runtime: "podman", prefix: PREFIX, stateDir });
    const [node1, node2] = state.nodes as [(typeof state.nodes)[0], (typeof state.nodes)[0]];
    const podOn1 = state.pods.find((pod) => pod.node === node1.name)!;
    const podOn2 = state.pods.find((pod) => pod.node === node2.name)!;
    const cni = nodeCniRoot(stateDir, node1.name);

    const dir = await mkdtemp(join(tmpdir(), "flatnet-fn-pr-containerd-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, "containerd.sock");
    await writeFile(
      join(dir, "config.toml"),
      [
        "version = 2",
        `root = "${dir}/root"`,
        `state = "${dir}/state"`,
        "[grpc]",
        `  address = "${socket}"`,
        // What a kubelet node would use (CRI); ctr run --cni reads its own fixed paths, bind-mounted below.
        `[plugins."io.containerd.grpc.v1.cri".cni]`,
        `  bin_dir = "${cni}/bin"`,
        `  conf_dir = "${cni}/net.d"`,
      ].join("\n") + "\n",
    );
    const containerd = startLogged(["nsenter", `--net=/run/netns/${node1.netns}`, "containerd", "--config", join(dir, "config.toml")], join(dir, "containerd.log"));
    cleanups.push(() => stopChild(containerd));
    const ctr = (...args: string[]) => run("ctr", ["-a", socket, "-n", NAMESPACE, ...args]);
    expect(await waitFor(async () => (await run("ctr", ["-a", socket, "version"], { allowFailure: true })).code === 0, { timeoutMs: 20_000, maxIntervalMs: 100 })).toBe(true);

    // The lab's own image, moved from node1's podman to containerd as an OCI archive.
    const archive = join(dir, "pod-image.tar");
    await nodePodman(stateDir, node1, ["save", "--format", "oci-archive", "-o", archive, POD_IMAGE]);
    await ctr("images", "import", "--base-name", POD_IMAGE.slice(0, POD_IMAGE.lastIndexOf(":")), archive);

    const bindCni = 'mount --bind "$1" /etc/cni/net.d && mount --bind "$2" /usr/lib/cni && shift 2 && exec "$@"';
    const { responder } = await buildPodImage(podImageDir(stateDir)); // built by lab up: this returns its paths
    const runner = startLogged(
      ["unshare", "--mount", "--propagation", "private", "sh", "-c", bindCni, "sh", `${cni}/net.d`, `${cni}/bin`,
        "nsenter", `--net=/run/netns/${node1.netns}`, "ctr", "-a", socket, "-n", NAMESPACE, "run", "--rm", "--cni",
        "--mount", `type=bind,src=${responder},dst=${RESPONDER_PATH},options=rbind:ro`, POD_IMAGE, "ctr1", ENTRY_PATH, "--pod", "ctr1", "--node", node1.name],
      join(dir, "ctr-run.log"),
    );
    cleanups.push(() => stopChild(runner));
    const exited = new Promise<number | null>((resolve) => runner.once("exit", (code) => resolve(code)));
    let pid = 0;
    const running = await waitFor(
      async () => {
        const tasks = (await ctr("tasks", "ls")).stdout.split("\n").map((line) => line.trim().split(/\s+/));
        const task = tasks.find((fields) => fields[0] === "ctr1" && fields[2] === "RUNNING");
        pid = Number(task?.[1] ?? 0);
        return pid > 0 && (await readFile(join(dir, "ctr-run.log"), "utf8")).includes('"ready":true');
      },
      { timeoutMs: 30_000, maxIntervalMs: 100 },
    );
    expect(running, await readFile(join(dir, "ctr-run.log"), "utf8")).toBe(true);

    const { stdout } = await run("nsenter", [`--net=/proc/${pid}/ns/net`, "ip", "-j", "-4", "addr", "show", "dev", "eth0", "scope", "global"]);
    const ip = (JSON.parse(stdout) as { addr_info: { local?: string }[] }[])[0]?.addr_info.find((info) => info.local)?.local ?? "";
    expect(cidrContains(parseCidr(node1.podCidrs[0]!), parseIp(ip))).toBe(true);
    expect(await podVeths(node1.netns)).toHaveLength(2);
    expect(reservedPodIps(stateDir, node1.name)).toEqual([...podOn1.ips, ip].sort());

    const identity = await responderIdentity(podOn2.netns, ip);
    expect([identity.pod, identity.podIps]).toEqual(["ctr1", [ip]]);

    // The task ends; ctr run runs CNI DEL and removes the container.
    await ctr("tasks", "kill", "--signal", "SIGKILL", "ctr1");
    expect(await exited).toBe(137);
    expect((await ctr("containers", "ls", "--quiet")).stdout.trim()).toBe("");
    expect([(await podVeths(node1.netns)).length, reservedPodIps(stateDir, node1.name)]).toEqual([1, podOn1.ips]);
  });
});

function startLogged(command: string[], logPath: string): ChildProcess {
  const log = openSync(logPath, "a");
  try {
    return spawn(command[0]!, command.slice(1), { stdio: ["ignore", log, log] });
  } finally {
    closeSync(log);
  }
}

/** SIGTERM to a child we started (by its PID), then waits for it to exit. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}
