import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { labDown, labUp } from "../../apps/agent/src/lab/lab.ts";
import { labCheck } from "./pod-checker/pod-checker.ts";
import { POD_IMAGE } from "../../apps/agent/src/lab/pod-image.ts";
import { nodePodman, removePodmanPods } from "../../apps/agent/src/lab/podman.ts";
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
