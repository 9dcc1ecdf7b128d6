import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { resolveAgentSettings } from "../../apps/agent/src/config/agent-config.ts";
import { agentSocketOf, cniWorkerSocket } from "../../apps/agent/src/cni/delegate.ts";
import { CniError } from "../../apps/agent/src/cni/errors.ts";
import { parseNetconf } from "../../apps/agent/src/cni/netconf.ts";
import { type Invocation, requireNodeNetns, resolveSubnet } from "../../apps/agent/src/cni/invocation.ts";
import { installCni } from "../../apps/agent/src/cni/runtime.ts";

// The real-cluster deployment against the CNI plugin as built: the ConfigMap's conflist passes the plugin's own
// checks, its nodeNetns and agentSocket are what the DaemonSet's agent names and serves, and the install-cni init
// container installs exactly what installCni (the lab's, and the reference for a node) installs.

const deployDir = fileURLToPath(new URL("../../deploy/", import.meta.url));
type Obj = Record<string, any>;

const docs = readdirSync(deployDir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(join(deployDir, f), "utf8")).map((d) => d.toJS() as Obj));
const find = (kind: string, name: string): Obj => {
  const found = docs.find((d) => d?.kind === kind && d.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/`);
  return found;
};
const configMap = find("ConfigMap", "flatnet-config");
const pod = find("DaemonSet", "flatnet").spec.template.spec as Obj;
const agent = pod.containers.find((c: Obj) => c.name === "agent") as Obj;
const installer = pod.initContainers.find((c: Obj) => c.name === "install-cni") as Obj;
const conflistText: string = configMap.data["cni-conf.json"];

const scratch = mkdtempSync(join(tmpdir(), "fnk-deploy-cni-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The agent's settings as the DaemonSet starts it: agent.yaml plus the flags of its start command. */
function agentSettings(node: string) {
  const config = join(scratch, "agent.yaml");
  writeFileSync(config, configMap.data["agent.yaml"]);
  const command = agent.args.join(" ");
  expect(command).toContain("--config /etc/flatnet/agent.yaml");
  const socketFlag = /--socket[ =]"?([^"\s]+)/.exec(command)?.[1];
  const flags: Record<string, string> = socketFlag === undefined ? {} : { socket: socketFlag };
  return resolveAgentSettings({ flags, flagSource: (key: string) => (key in flags ? "cli" : undefined), env: { FLATNET_NODE: node }, configPath: config });
}

/** The API socket the agent serves (apps/agent/src/cli/agent.ts: `options.socket ?? /run/flatnet/<node>.sock`). */
const apiSocketOf = (node: string) => agentSettings(node).socket ?? `/run/flatnet/${node}.sock`;

/** What the plugin does with the conflist's flatnet entry before any kernel work; throws the CniError it would answer. */
function pluginAccepts(conflist: Obj): { nodeNetns: string; agentSocket: string | undefined } {
  const entries = conflist.plugins.filter((p: Obj) => p.type === "flatnet");
  if (entries.length !== 1) throw new Error(`the conflist has ${entries.length} flatnet plugins, not 1`);
  // As the runtime hands the plugin its config: the list's name and cniVersion copied in.
  const stdin = JSON.stringify({ cniVersion: conflist.cniVersion, name: conflist.name, ...entries[0] });
  const netconf = parseNetconf(stdin);
  const inv = { netconf, deps: { readFile: () => JSON.stringify({ podCidrs: ["10.244.1.0/24"], mtu: 1450 }) } } as unknown as Invocation;
  resolveSubnet(inv);
  return { nodeNetns: requireNodeNetns(inv), agentSocket: agentSocketOf(stdin) };
}

describe("deploy/ conflist and the CNI plugin", () => {
  it("the plugin accepts the ConfigMap's conflist, with nodeNetns and agentSocket", () => {
    const accepted = pluginAccepts(JSON.parse(conflistText));
    expect(accepted).toEqual({ nodeNetns: "host", agentSocket: "/run/flatnet/agent-cni.sock" });
  });

  it.each<[string, (plugin: Obj) => void]>([
    ["without nodeNetns", (p) => delete p.nodeNetns],
    ["with a nodeNetns path instead of a name", (p) => (p.nodeNetns = "/run/netns/host")],
    ["with a relative agentSocket", (p) => (p.agentSocket = "run/flatnet/agent-cni.sock")],
    ["with both podCidrs and subnetFile", (p) => (p.podCidrs = ["10.244.1.0/24"])],
    ["with neither podCidrs nor subnetFile", (p) => delete p.subnetFile],
    ["with a relative dataDir", (p) => (p.dataDir = "ipam")],
  ])("the check fails on a conflist %s (the plugin rejects it)", (_label, mutate) => {
    const conflist = JSON.parse(conflistText);
    mutate(conflist.plugins.find((p: Obj) => p.type === "flatnet"));
    expect(() => pluginAccepts(conflist)).toThrow(CniError);
  });

  it("agentSocket is the CNI worker socket of the API socket the agent serves, the same path on every node", () => {
    const { agentSocket } = pluginAccepts(JSON.parse(conflistText));
    for (const node of ["node-a", "ip-172-31-0-11.ec2.internal"]) expect(agentSocket).toBe(cniWorkerSocket(apiSocketOf(node)));
  });

  it("the worker socket is on a hostPath the agent mounts at the same path, so the runtime's plugin on the host reaches it", () => {
    const { agentSocket } = pluginAccepts(JSON.parse(conflistText));
    const mount = agent.volumeMounts.find((m: Obj) => agentSocket!.startsWith(`${m.mountPath}/`));
    expect(mount).toBeDefined();
    const volume = pod.volumes.find((v: Obj) => v.name === mount.name);
    expect(volume.hostPath?.path).toBe(mount.mountPath);
  });

  it("nodeNetns is the agent's netns, named by install-cni on the host's /run/netns, which the agent mounts with pod namespaces propagating in", () => {
    const { nodeNetns } = pluginAccepts(JSON.parse(conflistText));
    expect(agentSettings("node-a").netns).toBe(nodeNetns);
    const script: string = installer.args.join(" ");
    const link = new RegExp(`ln -sfn /proc/1/ns/net (\\S+)/${nodeNetns};`).exec(script);
    expect(link, `install-cni links /proc/1/ns/net as ${nodeNetns}`).not.toBeNull();
    const initMount = installer.volumeMounts.find((m: Obj) => m.mountPath === link![1]);
    const agentMount = agent.volumeMounts.find((m: Obj) => m.mountPath === "/run/netns");
    expect(initMount?.name).toBe(agentMount?.name);
    expect(pod.volumes.find((v: Obj) => v.name === agentMount.name).hostPath.path).toBe("/run/netns");
    // Pods' namespaces are bind-mounted there after the agent starts; the CNI worker opens them (CNI_NETNS).
    expect(agentMount.mountPropagation).toBe("HostToContainer");
  });
});

describe("install-cni installs what installCni installs", () => {
  const IMAGE_CNI = "/opt/flatnet/dist/cni/";

  /** Runs the init container's script with its absolute paths moved under `root`. */
  function runInstaller(script: string, root: string): void {
    const moved = script.replace(/\/(opt\/flatnet\/dist\/cni|host|etc\/flatnet)\//g, (_m, dir: string) => `${root}/${dir}/`);
    for (const dir of ["host/opt/cni/bin", "host/etc/cni/net.d", "host/run/netns", "etc/flatnet"]) mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, "etc/flatnet/cni-conf.json"), conflistText);
    const run = spawnSync("/bin/sh", ["-c", moved], { encoding: "utf8" });
    if (run.status !== 0) throw new Error(`install-cni exited ${run.status}: ${run.stderr}`);
  }

  /** The image's dist/cni: the Bun binary, and the native client when it was built. */
  function image(root: string, withClient: boolean): string {
    const dir = join(root, "opt/flatnet/dist/cni");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "flatnet"), "#!bun binary\n");
    chmodSync(join(dir, "flatnet"), 0o755);
    if (withClient) {
      writeFileSync(join(dir, "flatnet-client"), "#!native client\n");
      chmodSync(join(dir, "flatnet-client"), 0o755);
    }
    return dir;
  }

  const binOf = (dir: string) =>
    Object.fromEntries(
      readdirSync(dir)
        .sort()
        .map((f) => [f, { content: readFileSync(join(dir, f), "utf8"), executable: (statSync(join(dir, f)).mode & 0o111) !== 0 }]),
    );

  function compare(label: string, withClient: boolean, script: string) {
    const root = join(scratch, label);
    const cni = image(root, withClient);
    // A stale flatnet-bun from an earlier install with the client: both must remove it when there is none now.
    mkdirSync(join(root, "host/opt/cni/bin"), { recursive: true });
    mkdirSync(join(root, "lab/bin"), { recursive: true });
    for (const bin of [join(root, "host/opt/cni/bin"), join(root, "lab/bin")]) writeFileSync(join(bin, "flatnet-bun"), "stale\n");
    runInstaller(script, root);
    installCni({ root: join(root, "lab"), nodeNetns: "host", subnetFile: "/run/flatnet/subnet.json", pluginBinary: join(cni, "flatnet"), nativeClient: "if-built" });
    return { root, deployed: binOf(join(root, "host/opt/cni/bin")), reference: binOf(join(root, "lab/bin")) };
  }

  const script: string = installer.args.join(" ");

  it.each([
    ["with the native client built", true, ["flatnet", "flatnet-bun"]],
    ["without the native client", false, ["flatnet"]],
  ])("%s: the same files, contents and modes in /opt/cni/bin", (label, withClient, files) => {
    expect(script).toContain(IMAGE_CNI);
    const { root, deployed, reference } = compare(label.replace(/\W+/g, "-"), withClient as boolean, script);
    expect(Object.keys(deployed)).toEqual(files);
    expect(deployed).toEqual(reference);
    // The conflist is the ConfigMap's, byte for byte, and nothing half-written is left behind.
    expect(readdirSync(join(root, "host/etc/cni/net.d"))).toEqual(["10-flatnet.conflist"]);
    expect(readFileSync(join(root, "host/etc/cni/net.d/10-flatnet.conflist"), "utf8")).toBe(conflistText);
    expect(readlinkSync(join(root, "host/run/netns/host"))).toBe("/proc/1/ns/net");
  });

  it.each<[string, (s: string) => string]>([
    ["does not install flatnet-bun beside the client", (s) => s.replace(/put \S+flatnet \S+flatnet-bun;/, "")],
    ["installs the Bun binary as flatnet although the client is built", (s) => s.replace("[ -e /opt/flatnet/dist/cni/flatnet-client ]", "false")],
    ["copies only flatnet, as before", () => "set -e; cp /opt/flatnet/dist/cni/flatnet /host/opt/cni/bin/flatnet; cp /etc/flatnet/cni-conf.json /host/etc/cni/net.d/10-flatnet.conflist"],
  ])("the comparison catches an installer that %s", (label, mutate) => {
    const { deployed, reference } = compare(`broken-${label.replace(/\W+/g, "-")}`, true, mutate(script));
    expect(deployed).not.toEqual(reference);
  });

  describe("deploy/uninstall.yaml", () => {
    const spec = find("DaemonSet", "flatnet-uninstall").spec.template.spec as Obj;
    const uninstallCni: string = spec.initContainers.find((c: Obj) => c.name === "uninstall-cni").args.join(" ");
    const cleanup = spec.containers.find((c: Obj) => c.name === "cleanup") as Obj;

    it("uninstall-cni leaves the runtime's directories as they were before install-cni, other networks' files kept", () => {
      const root = join(scratch, "uninstall");
      image(root, true);
      const bin = join(root, "host/opt/cni/bin");
      const confDir = join(root, "host/etc/cni/net.d");
      for (const dir of [bin, confDir]) mkdirSync(dir, { recursive: true });
      writeFileSync(join(bin, "portmap"), "reference plugin\n");
      writeFileSync(join(confDir, "05-other.conflist"), "{}\n");
      const before = { bin: binOf(bin), conf: binOf(confDir) };
      runInstaller(script, root);
      expect(Object.keys(binOf(bin))).toEqual(["flatnet", "flatnet-bun", "portmap"]);
      runInstaller(uninstallCni, root);
      expect({ bin: binOf(bin), conf: binOf(confDir) }).toEqual(before);
    });

    it("cleanup runs the agent's --cleanup in the netns install-cni names, with the agent's capabilities, then removes the link", () => {
      const steps: string = cleanup.args.join(" ");
      const order = ["ln -sfn /proc/1/ns/net /run/netns/host;", "flatnet agent --netns host --cleanup;", "rm -f /run/netns/host;"].map((step) => steps.indexOf(step));
      expect(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!))).toBe(true);
      expect(cleanup.securityContext.capabilities).toEqual(agent.securityContext.capabilities);
      expect(cleanup.volumeMounts.find((m: Obj) => m.mountPath === "/run/netns")).toBeDefined();
      expect(spec.hostNetwork).toBe(true);
    });
  });

  it("the image keeps the plugin where install-cni and the agent's CNI worker look (dist/cni next to dist/main.js)", () => {
    const dockerfile = readFileSync(join(deployDir, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^WORKDIR \/opt\/flatnet$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/apps\/agent\/dist \.\/dist$/m);
    expect(dockerfile).toMatch(/ln -s \/opt\/flatnet\/dist\/main\.js \/usr\/local\/bin\/flatnet/);
    // Nothing moves or deletes dist/cni afterwards (the worker starts dist/cni/flatnet: defaultPluginBinary).
    expect(dockerfile).not.toMatch(/\b(mv|rm)\b[^\n]*dist\/cni/);
    // The build stage has a C compiler and static libc, and fails when the native client was not built.
    expect(dockerfile).toMatch(/apt-get install[^\n]*\bgcc\b[^\n]*\blibc6-dev\b/);
    expect(dockerfile).toContain("test -x apps/agent/dist/cni/flatnet-client");
  });
});
