import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadDeployManifests, type DeployImage } from "../../apps/agent/src/lab/deploy-manifest.ts";
import { exportImageOnce, removeDeployedNodes } from "../../apps/agent/src/lab/deploy.ts";
import { inNodeHost, nodeHostPodman, nodeRunRoot, runInitContainer, startNodeHost, type NodeHost } from "../../apps/agent/src/lab/deploy-node.ts";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { flatnetCommand, stopRecordedProcess } from "../../apps/agent/src/lab/supervisor.ts";
import { labDown, labStatus, labUp } from "../../apps/agent/src/lab/lab.ts";
import { labCheck } from "./pod-checker/pod-checker.ts";
import { listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";
import { isRoot, skipReason } from "./lab-helpers.ts";

// `lab up --deploy`, the part that runs: a lab node as a host for the DaemonSet (its netns, plus its own mount and PID
// namespaces) and the DaemonSet's install-cni init container, exactly as deploy/*.yaml says, from the image
// `npm run image` builds, under the node's podman. Then `lab up --deploy`: 3 nodes running the whole DaemonSet against
// the fake kube-apiserver, pods from each node's podman through the conflist install-cni wrote, every pair checked.
const NETNS = "fn-dp-node1";
// The image `npm run image` builds; FLATNET_DEPLOY_IMAGE names another tag (an image built from this tree).
const IMAGE = process.env.FLATNET_DEPLOY_IMAGE ?? "localhost/flatnet:dev";
const deployDir = fileURLToPath(new URL("../../deploy/", import.meta.url));
skipReason("lab deploy tests");
const imageBuilt = isRoot && spawnSync("podman", ["image", "exists", IMAGE]).status === 0;
if (isRoot && !imageBuilt) console.log(`lab deploy tests skipped: ${IMAGE} is not built (npm run image)`);

describe.skipIf(!imageBuilt)("the DaemonSet's install-cni in a lab node", () => {
  const scratch = mkdtempSync(join(tmpdir(), "fn-dp-deploy-"));
  const hosts: NodeHost[] = [];
  let image: DeployImage;
  afterAll(async () => {
    // Each node's init, waited for: its PID namespace's processes are gone before their run root is removed.
    for (const host of hosts) await stopRecordedProcess(host, "SIGKILL");
    for (const name of ["node1", "node2"]) rmSync(nodeRunRoot(join(scratch, name, "root")), { recursive: true, force: true });
    await run("ip", ["netns", "delete", NETNS], { allowFailure: true });
    await run("sh", ["-c", `grep -o " ${scratch}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount`], { allowFailure: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  async function node(name: string, netns = NETNS) {
    await run("ip", ["netns", "add", netns], { allowFailure: true });
    const hostRoot = join(scratch, name, "root");
    const host = await startNodeHost(netns, hostRoot);
    hosts.push(host);
    image ??= await exportImageOnce(IMAGE);
    return { host, node: { name, hostIp: "172.31.0.11", hostRoot, podDir: join(scratch, name, "pod") } };
  }

  it("installs the plugin, the ConfigMap's conflist and /run/netns/host naming the node's namespace, not this machine's", async () => {
    const { host, node: target } = await node("node1");
    const manifests = loadDeployManifests(deployDir);
    await runInitContainer(host, manifests, "install-cni", target, image, "{}");
    const conflist = join(target.hostRoot, "etc/cni/net.d/10-flatnet.conflist");
    expect(readFileSync(conflist, "utf8")).toBe(manifests.configMap.data["cni-conf.json"]);
    expect(statSync(join(target.hostRoot, "opt/cni/bin/flatnet")).mode & 0o111).not.toBe(0);
    expect(readlinkSync(join(target.hostRoot, "run/netns/host"))).toBe("/proc/1/ns/net");
    // Inside the node, "host" is the node's netns (same inode as /run/netns/fn-dp-node1), not the root namespace's.
    const inode = (await inNodeHost(host, "stat", ["-L", "-c", "%i", "/run/netns/host"])).stdout.trim();
    expect(inode).toBe(String(statSync(`/run/netns/${NETNS}`).ino));
    expect(inode).not.toBe(String(statSync("/proc/self/ns/net").ino));
  });

  it("a manifest change is what runs: a temp copy naming another conflist file installs that one", async () => {
    const { host, node: target } = await node("node2");
    const copy = join(scratch, "deploy-copy");
    cpSync(deployDir, copy, { recursive: true });
    const file = join(copy, "daemonset.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("/host/etc/cni/net.d/10-flatnet.conflist", "/host/etc/cni/net.d/05-flatnet.conflist"));
    await runInitContainer(host, loadDeployManifests(copy), "install-cni", target, image, "{}");
    expect(existsSync(join(target.hostRoot, "etc/cni/net.d/05-flatnet.conflist"))).toBe(true);
    expect(existsSync(join(target.hostRoot, "etc/cni/net.d/10-flatnet.conflist"))).toBe(false);
  });
});

describe.skipIf(!isRoot)("lab down of a deployed node", () => {
  const pidNamespace = (pid: number | string): string | undefined => {
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`);
    } catch {
      return undefined;
    }
  };
  const inPidNamespace = (ns: string): string[] => readdirSync("/proc").filter((entry) => /^[0-9]+$/.test(entry) && pidNamespace(entry) === ns);

  it("ends every process of the node's PID namespace, then removes the node's podman run root", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "fn-dp-down-"));
    const netns = "fn-dp-down1";
    const stateDir = join(scratch, "lab");
    const hostRoot = join(stateDir, "deploy", "node1", "root");
    let host: NodeHost | undefined;
    await run("ip", ["netns", "add", netns]);
    try {
      host = await startNodeHost(netns, hostRoot);
      writeFileSync(join(stateDir, "deploy", "node1", "host.json"), JSON.stringify(host));
      const ns = pidNamespace(host.pid)!;
      // A process of the node that outlives `podman rm`, as the `podman container cleanup` a conmon starts when its
      // container exits can on a loaded machine; running on, it would write the run root back.
      await inNodeHost(host, "sh", ["-c", `mkdir -p ${nodeRunRoot(hostRoot)} && (exec sleep infinity) </dev/null >/dev/null 2>&1 &`]);
      expect(inPidNamespace(ns).length).toBe(2);
      await removeDeployedNodes(stateDir);
      expect(inPidNamespace(ns)).toEqual([]);
      expect(existsSync(nodeRunRoot(hostRoot))).toBe(false);
    } finally {
      if (host !== undefined) await stopRecordedProcess(host, "SIGKILL");
      rmSync(nodeRunRoot(hostRoot), { recursive: true, force: true });
      await run("ip", ["netns", "delete", netns], { allowFailure: true });
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!imageBuilt)("flatnet lab up --deploy: 3 nodes run the DaemonSet as written", () => {
  const PREFIX = "fn-dpl-";
  const scratch = mkdtempSync(join(tmpdir(), "fn-dp-lab-"));
  const stateDir = join(scratch, "lab");
  const api = new FakeApiServer();
  afterAll(async () => {
    await labDown({ stateDir, prefix: PREFIX }).catch(() => {});
    await api.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("agents Ready by their readinessProbe, all pairs verified; a manifest change (an env) is what runs; down leaves nothing", async () => {
    const socket = join(scratch, "api.sock");
    await api.start(socket);
    // A temp copy of deploy/ with one more env on the agent: what runs is read from the files.
    const deployDir = join(scratch, "deploy");
    cpSync(fileURLToPath(new URL("../../deploy/", import.meta.url)), deployDir, { recursive: true });
    const file = join(deployDir, "daemonset.yaml");
    const text = readFileSync(file, "utf8");
    const marked = text.replace("          env:\n", "          env:\n            - name: FLATNET_LAB_MARK\n              value: from-the-copy\n");
    expect(marked).not.toBe(text);
    writeFileSync(file, marked);

    const started = performance.now();
    const state = await labUp({ nodes: 3, podsPerNode: 2, prefix: PREFIX, stateDir, deploy: { deployDir, kubeApiSocket: socket, image: IMAGE }, timeoutMs: 90_000 });
    const report = await labCheck({ stateDir });
    const seconds = (performance.now() - started) / 1000;
    console.log(`lab up --deploy, 3 nodes x 2 pods, to all pairs verified: ${seconds.toFixed(1)} s`);
    expect(report.pairs.filter((pair) => !pair.ok)).toEqual([]);
    expect(report.pairs).toHaveLength(6 * 5);
    expect(state.runtime).toBe("podman");
    // `lab status` asks each agent over its own socket (the lab's path links to the container's).
    const status = await labStatus({ stateDir });
    expect(status.nodes.map((node) => [node.name, node.agent.running, node.agent.healthy, node.agent.ready])).toEqual(state.nodes.map((node) => [node.name, true, true, true]));
    // The CLI's `lab check` (the probe engine) also probes from each node itself, through the agent's node responder.
    const [nodeBin, main] = flatnetCommand() as [string, string];
    const cli = await run(nodeBin, [main, "lab", "check", "--state-dir", stateDir], { allowFailure: true, timeoutMs: 120_000 });
    expect(cli.code, cli.stderr + cli.stdout).toBe(0);

    for (const node of state.nodes) {
      // The Node the lab registered (kubelet's part), annotated by its own agent; pod CIDRs as kube-controller-manager gave.
      const object = api.getNode(node.name);
      expect(node.podCidrs).toEqual(object?.spec.podCIDRs);
      expect(Object.keys(object?.metadata.annotations ?? {}).some((key) => key.startsWith("flatnet.io/"))).toBe(true);
      // Each pod's IP is in its node's pod CIDR, the one the agent read from the API server.
      for (const pod of state.pods.filter((p) => p.node === node.name)) expect(pod.ips[0]?.startsWith(node.podCidrs[0]!.replace(/0\/24$/, ""))).toBe(true);
    }
    const node1 = state.nodes[0]!;
    const host = JSON.parse(readFileSync(join(stateDir, "deploy", node1.name, "host.json"), "utf8")) as NodeHost;
    const env = await nodeHostPodman(host, join(stateDir, "deploy", node1.name, "root"), ["inspect", "--format", "{{json .Config.Env}}", "flatnet-node1-agent"]);
    expect(JSON.parse(env.stdout)).toEqual(expect.arrayContaining(["FLATNET_LAB_MARK=from-the-copy", `FLATNET_NODE=${node1.name}`, `HOST_IP=${node1.underlayIps[0]}`]));

    await labDown({ stateDir, prefix: PREFIX });
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
    // Each node's podman run root is gone, and nothing wrote it back after (the list names what came back).
    for (const node of state.nodes) {
      const runRoot = nodeRunRoot(join(stateDir, "deploy", node.name, "root"));
      expect(existsSync(runRoot) ? readdirSync(runRoot, { recursive: true }) : "gone", runRoot).toBe("gone");
    }
  }, 300_000);
});
