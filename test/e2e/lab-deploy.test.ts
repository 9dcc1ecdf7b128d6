import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadDeployManifests, type DeployImage } from "../../apps/agent/src/lab/deploy-manifest.ts";
import { exportImage, inNodeHost, nodeRunRoot, runInitContainer, startNodeHost, type NodeHost } from "../../apps/agent/src/lab/deploy-node.ts";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { killPid } from "../../apps/agent/src/lab/supervisor.ts";
import { isRoot, skipReason } from "./lab-helpers.ts";

// `lab up --deploy`, the part that runs: a lab node as a host for the DaemonSet (its netns, plus its own mount and PID
// namespaces) and the DaemonSet's install-cni init container, exactly as deploy/*.yaml says, from the image
// `npm run image` builds, under the node's podman. The agent container against the fake kube-apiserver is not here yet.
const NETNS = "fn-dp-node1";
const IMAGE = "localhost/flatnet:dev";
const deployDir = fileURLToPath(new URL("../../deploy/", import.meta.url));
skipReason("lab deploy tests");
const imageBuilt = isRoot && spawnSync("podman", ["image", "exists", IMAGE]).status === 0;
if (isRoot && !imageBuilt) console.log(`lab deploy tests skipped: ${IMAGE} is not built (npm run image)`);

describe.skipIf(!imageBuilt)("the DaemonSet's install-cni in a lab node", () => {
  const scratch = mkdtempSync(join(tmpdir(), "fn-dp-deploy-"));
  const hosts: NodeHost[] = [];
  let image: DeployImage;
  afterAll(async () => {
    for (const host of hosts) killPid(host.pid);
    for (const name of ["node1", "node2"]) rmSync(nodeRunRoot(join(scratch, name, "root")), { recursive: true, force: true });
    await run("ip", ["netns", "delete", NETNS], { allowFailure: true });
    await run("sh", ["-c", `grep -o " ${scratch}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount`], { allowFailure: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  async function node(name: string) {
    await run("ip", ["netns", "add", NETNS], { allowFailure: true });
    const hostRoot = join(scratch, name, "root");
    const host = await startNodeHost(NETNS, hostRoot);
    hosts.push(host);
    image ??= await exportImage(IMAGE, join(scratch, "image"));
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
