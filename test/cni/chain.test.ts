// flatnet chained with the reference plugins (portmap, bandwidth, tuning) in one conflist, driven as a runtime does
// (libcni semantics: list name and version injected, runtimeConfig per capability, prevResult passed, DEL in reverse).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addNetworkList,
  CniPluginError,
  type Conflist,
  delNetworkList,
  type ExecutorOptions,
  readCachedResult,
} from "../../apps/agent/src/cni/executor.ts";
import { checkNetworkList } from "../../apps/agent/test-support/cni-list.ts";
import { createNamespaces, haveReference, installPlugin, isRoot, linksOf, REFERENCE_PLUGINS, sh, tempDir } from "./helpers.ts";

const NODE = "fn-tc-c-node";
const POD = "fn-tc-c-pod";

if (!isRoot || !haveReference) console.log("skipping CNI chaining tests: they need root and containernetworking-plugins in /usr/lib/cni");

describe.skipIf(!isRoot || !haveReference)("flatnet chained with portmap, bandwidth and tuning", { timeout: 120_000 }, () => {
  const dir = tempDir("fn-tc-chain-");
  let cleanup = () => {};
  const options = (): ExecutorOptions => ({ binDirs: [join(dir.path, "bin"), REFERENCE_PLUGINS], cacheDir: join(dir.path, "cache"), nodeNetns: NODE });
  const list = (cniVersion: string, podCidrs = ["10.80.0.0/24"]): Conflist => ({
    cniVersion,
    name: "fn-tc-chain",
    plugins: [
      { type: "flatnet", podCidrs, mtu: 1450, nodeNetns: NODE, dataDir: join(dir.path, "ipam") },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
      { type: "bandwidth", capabilities: { bandwidth: true } },
      { type: "tuning", sysctl: { "net.core.somaxconn": "512" } },
    ],
  });
  const rt = (containerId: string) => ({
    containerId,
    netns: `/run/netns/${POD}`,
    ifName: "eth0",
    args: { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "web" }, // as kubelet passes them
    capabilityArgs: {
      portMappings: [{ hostPort: 18080, containerPort: 80, protocol: "tcp" }],
      bandwidth: { ingressRate: 8_000_000, ingressBurst: 800_000, egressRate: 8_000_000, egressBurst: 800_000 },
    },
  });
  // portmap 1.1.1's CHECK also checks its DNAT chain in ip6tables whatever the pod's family (and with the IPv4 rules),
  // so it fails wherever ip6tables works; fixed upstream after 1.1.1. Everything else in the chain must pass CHECK.
  const checkChain = async (chain: Conflist, conf: ReturnType<typeof rt>) => {
    const error = await checkNetworkList(chain, conf, options()).catch((e: unknown) => e);
    if (error !== undefined) {
      expect(error).toMatchObject({ plugin: "portmap", command: "CHECK" });
      expect((error as CniPluginError).msg).toContain("could not check ipv6 dnat");
      await checkNetworkList({ ...chain, plugins: chain.plugins.filter((p) => p.type !== "portmap") }, conf, options());
    }
  };
  const nat = () => sh("ip", ["netns", "exec", NODE, "iptables-save", "-t", "nat"]).stdout;

  beforeAll(() => {
    installPlugin(dir.path);
    cleanup = createNamespaces([NODE, POD]);
  }, 300_000);
  afterAll(() => {
    cleanup();
    dir.remove();
  });

  // The Debian reference plugins (1.1.1) speak CNI up to 1.0.0, so the chain runs at 1.0.0 and 0.4.0.
  it.each(["1.0.0", "0.4.0"])("ADD, CHECK and DEL through the whole chain at cniVersion %s (portmap 1.1.1 CHECK bug tolerated, see checkChain)", async (version) => {
    const id = `chain-${version.replaceAll(".", "")}`;
    const result = (await addNetworkList(list(version), rt(id), options())) as { cniVersion: string; ips: { address: string }[]; interfaces: { name: string; sandbox?: string }[] };
    // The chain's final result is flatnet's, passed through every plugin as prevResult.
    expect(result.cniVersion).toBe(version);
    expect(result.ips.map((ip) => ip.address)).toEqual(version === "1.0.0" ? ["10.80.0.2/24"] : ["10.80.0.3/24"]);
    const hostIf = result.interfaces[0]!.name;
    expect(result.interfaces[1]).toMatchObject({ name: "eth0", sandbox: `/run/netns/${POD}` });

    expect(sh("ip", ["netns", "exec", POD, "sysctl", "-n", "net.core.somaxconn"]).stdout.trim()).toBe("512"); // tuning
    expect(nat()).toContain("--dport 18080"); // portmap
    expect(sh("tc", ["-n", NODE, "qdisc", "show", "dev", hostIf]).stdout).toContain("tbf"); // bandwidth (egress of the pod)
    expect(linksOf(NODE, "bwp").length).toBe(1); // bandwidth's ifb for the pod's ingress

    await checkChain(list(version), rt(id));

    await delNetworkList(list(version), rt(id), options());
    expect(readCachedResult(list(version), rt(id), options())).toBeUndefined();
    expect(linksOf(NODE, "fnv")).toEqual([]);
    expect(linksOf(NODE, "bwp")).toEqual([]);
    expect(linksOf(POD)).toEqual(["lo"]);
    expect(nat()).not.toContain("--dport 18080");
    await delNetworkList(list(version), rt(id), options()); // DEL twice: every plugin in the chain is idempotent
  });

  it("dual-stack: ADD, CHECK and DEL through the chain", async () => {
    const dual = list("1.0.0", ["10.80.0.0/24", "fd00:80::/64"]);
    const result = (await addNetworkList(dual, rt("chain-dual"), options())) as { ips: { address: string }[] };
    expect(result.ips.map((ip) => ip.address.includes(":") ? "IPv6" : "IPv4")).toEqual(["IPv4", "IPv6"]);
    await checkChain(dual, rt("chain-dual"));
    await delNetworkList(dual, rt("chain-dual"), options());
    expect(linksOf(NODE, "fnv")).toEqual([]);
    expect(nat()).not.toContain("--dport 18080");
  });

  it("CHECK through the chain fails at flatnet when the pod lost its address, with flatnet's code", async () => {
    await addNetworkList(list("1.0.0"), rt("chain-check"), options());
    sh("ip", ["-n", POD, "addr", "flush", "dev", "eth0", "scope", "global"]);
    const error = await checkNetworkList(list("1.0.0"), rt("chain-check"), options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CniPluginError);
    expect(error).toMatchObject({ plugin: "flatnet", command: "CHECK", code: 102 });
    await delNetworkList(list("1.0.0"), rt("chain-check"), options());
    expect(linksOf(NODE, "fnv")).toEqual([]);
  });
});
