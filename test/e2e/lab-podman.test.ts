import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { cidrContains, DEFAULT_PROBE_PORT, parseCidr, parseIp } from "@flatnet/core";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { labDown, labUp } from "../../apps/agent/src/lab/lab.ts";
import { labCheck } from "./pod-checker/pod-checker.ts";
import { POD_IMAGE } from "../../apps/agent/src/lab/pod-image.ts";
import { nodePodman, nodePodmanCommand, PODMAN_NETWORK, removePodmanPods } from "../../apps/agent/src/lab/podman.ts";
import { flatnetCommand } from "../../apps/agent/src/lab/supervisor.ts";
import { listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";
import { isRoot, podVeths, reservedPodIps, responderIdentity, skipReason, tempStateDir } from "./lab-helpers.ts";

// `lab up --runtime podman`: every pod a container of its node's podman (CNI backend, runc) attached through the
// conflist the lab installed, running the probe responder; `lab check` over them; `lab down` leaves nothing.
const PREFIX = "fn-pr-";
skipReason("podman lab tests");

interface Container {
  Names: string[];
  Image: string;
  State: string;
  Pid: number;
}

describe.skipIf(!isRoot)("flatnet lab --runtime podman: 3 nodes x 2 containers", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await labDown({ stateDir: dir, prefix: PREFIX }).catch(() => {});
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
  });

  it("runs every pod as a podman container serving the responder; check passes; down leaves no veth, reservation or container", async () => {
    const stateDir = await tempStateDir(PREFIX);
    dirs.push(stateDir);
    const state = await labUp({ nodes: 3, podsPerNode: 2, runtime: "podman", prefix: PREFIX, stateDir });
    expect(state.runtime).toBe("podman");
    expect(state.pods).toHaveLength(6);

    const sandboxes: string[] = [];
    const pids: number[] = [];
    for (const node of state.nodes) {
      const { stdout } = await nodePodman(stateDir, node, ["ps", "--all", "--format", "json"]);
      const containers = (JSON.parse(stdout) as Container[]).map((c) => ({ name: c.Names[0], image: c.Image, state: c.State }));
      const pods = state.pods.filter((pod) => pod.node === node.name);
      expect(containers.sort((a, b) => String(a.name).localeCompare(String(b.name)))).toEqual(
        pods.map((pod) => ({ name: pod.name, image: POD_IMAGE, state: "running" })),
      );
      expect((await podVeths(node.netns)).length).toBe(2);
      expect(reservedPodIps(stateDir, node.name)).toEqual(pods.flatMap((pod) => pod.ips).sort());
      for (const pod of pods) {
        const inspect = await nodePodman(stateDir, node, ["inspect", "--format", "{{.State.Pid}} {{.NetworkSettings.SandboxKey}}", pod.containerId]);
        const [pid, sandbox] = inspect.stdout.trim().split(" ");
        pids.push(Number(pid));
        sandboxes.push(sandbox ?? "");
        // The lab's name for the pod namespace is the container's own network namespace.
        const [named, container] = await Promise.all([run("stat", ["-L", "-c", "%i", `/run/netns/${pod.netns}`]), run("stat", ["-L", "-c", "%i", `/proc/${pid}/ns/net`])]);
        expect(named.stdout).toBe(container.stdout);
      }
    }

    // The container's responder answers a pod of another node on the pod IP, naming itself.
    const [first, other] = [state.pods[0]!, state.pods.find((pod) => pod.node !== state.pods[0]!.node)!];
    const identity = await responderIdentity(other.netns, first.ips[0]!);
    expect([identity.pod, identity.node, identity.podIps]).toEqual([first.name, first.node, first.ips]);

    const report = await labCheck({ stateDir });
    expect(report.pairs.filter((pair) => !pair.ok)).toEqual([]);
    expect(report.pairs).toHaveLength(6 * 5);
    for (const pair of report.pairs) expect(pair.sawSource).toBe(pair.expectedSource);
    // The CLI's `lab check` (the probe engine) drives the containers' own responders, over their control sockets.
    const [node, main] = flatnetCommand() as [string, string];
    const cli = await run(node, [main, "lab", "check", "--state-dir", stateDir], { allowFailure: true, timeoutMs: 120_000 });
    expect(cli.code, cli.stderr + cli.stdout).toBe(0);

    // The same podman started from a private mount namespace (issue 11): the netns it bind-mounts under /run/netns
    // is a netns only there, so the agent's worker, in this machine's mount namespace, cannot act on that path and
    // the call runs in the plugin's own process. ADD, a request to a pod on another node, and DEL, in one script.
    const [node1, away] = [state.nodes[0]!, state.pods.find((pod) => pod.node !== state.nodes[0]!.name)!];
    const before = [await podVeths(node1.netns), reservedPodIps(stateDir, node1.name)];
    const { argv, env } = nodePodmanCommand(stateDir, node1); // the lab's own podman of node1 (no word needs quoting)
    const podman = argv.join(" ");
    const script = [
      "set -e",
      `id=$(${podman} run -d --name fn-private-mnt --network ${PODMAN_NETWORK} ${POD_IMAGE} /bin/sleep 300)`,
      `pid=$(${podman} inspect --format '{{.State.Pid}}' "$id")`,
      `key=$(${podman} inspect --format '{{.NetworkSettings.SandboxKey}}' "$id")`,
      `echo "ns $(stat -L -c %d:%i /proc/$pid/ns/net)"`,
      `echo "runtime $(stat -L -c %d:%i "$key")"`,
      `echo "host $(nsenter --mount=/proc/${process.pid}/ns/mnt stat -L -c %d:%i "$key" 2>/dev/null || echo missing)"`,
      `${podman} exec "$id" ip -o -4 addr show dev eth0`,
      `${podman} exec "$id" wget -qO- http://${away.ips[0]}:${DEFAULT_PROBE_PORT}/v1/identity; echo`,
      `${podman} rm --force "$id" >/dev/null`,
    ].join("\n");
    const privateRun = await run("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], {
      env,
      allowFailure: true,
      timeoutMs: 120_000,
    });
    expect(privateRun.code, privateRun.stderr).toBe(0);
    const seen = Object.fromEntries(privateRun.stdout.split("\n").filter((line) => /^(ns|runtime|host) /.test(line)).map((line) => line.split(" ")));
    expect(seen.runtime).toBe(seen.ns); // the runtime's path is the container's netns ...
    expect(seen.host).not.toBe(seen.ns); // ... and is not that netns in the agent's mount namespace
    const ip = /inet (\S+)\//.exec(privateRun.stdout)?.[1];
    expect(ip && cidrContains(parseCidr(node1.podCidrs[0]!), parseIp(ip))).toBe(true);
    expect(JSON.parse(privateRun.stdout.split("\n").find((line) => line.startsWith("{")) ?? "{}")).toMatchObject({ pod: away.name, node: away.node });
    expect([await podVeths(node1.netns), reservedPodIps(stateDir, node1.name)]).toEqual(before);

    // Removing a node's containers runs each one's CNI DEL: its veths and IP reservations go.
    const node3 = state.nodes[2]!;
    await removePodmanPods(stateDir, node3);
    expect([await podVeths(node3.netns), reservedPodIps(stateDir, node3.name)]).toEqual([[], []]);

    await labDown({ stateDir, prefix: PREFIX });
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
    expect(sandboxes.filter((sandbox) => existsSync(sandbox))).toEqual([]);
    expect(pids.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((line) => line.includes(stateDir));
    expect([mounts, existsSync(stateDir)]).toEqual([[], false]);
  });

  it("rejects an unknown runtime naming it and the choices", async () => {
    const stateDir = await tempStateDir(PREFIX);
    dirs.push(stateDir);
    await expect(labUp({ runtime: "docker" as never, prefix: PREFIX, stateDir })).rejects.toThrow(
      '--runtime "docker" is unknown; use one of netns, podman',
    );
  });
});
