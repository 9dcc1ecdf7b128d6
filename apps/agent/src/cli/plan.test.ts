import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Command } from "commander";
import { type PlanArguments, registerPlanCommand, runPlan } from "./plan.ts";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const example = `${root}examples/cluster.yaml`;

async function run(args: PlanArguments, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runPlan(args, {
    readText: (file) => (input !== undefined ? Promise.resolve(input) : readFile(file, "utf8")),
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

describe("flatnet plan", () => {
  it("prints node-1's pod CIDRs and the exact commands for examples/cluster.yaml", async () => {
    const { code, stdout, stderr } = await run({ file: example, node: "node-1" });
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toBe(`# flatnet plan: backend auto, cluster CIDRs 10.244.0.0/16, fd00:10:244::/56, VNI 1, VXLAN port 8472

## node node-1
pod CIDRs: 10.244.1.0/24, fd00:10:244:1::/64
pod MTU:   1450
peer:      node-2 IPv4 10.244.0.0/24 via host-gw
peer:      node-2 IPv6 fd00:10:244::/64 via host-gw
peer:      node-3 IPv4 10.244.2.0/24 via vxlan
peer:      node-3 IPv6 fd00:10:244:2::/64 via vxlan
# commands, in order (run inside the node's network namespace: ip -n <netns> -batch - / bridge -n <netns> -batch -):
ip link add flatnet.1 address 16:e3:91:2d:58:86 mtu 1450 type vxlan id 1 local 172.31.0.11 dev eth0 dstport 8472 nolearning
ip link set dev flatnet.1 up
ip address replace 10.244.1.0/32 dev flatnet.1
ip address replace fd00:10:244:1::/128 dev flatnet.1 nodad
bridge fdb replace 0a:58:ac:1f:01:0d dev flatnet.1 dst 172.31.1.13 self permanent
ip neigh replace 10.244.2.0 lladdr 0a:58:ac:1f:01:0d dev flatnet.1 nud permanent
ip neigh replace fd00:10:244:2:: lladdr 0a:58:ac:1f:01:0d dev flatnet.1 nud permanent
ip route replace 10.244.0.0/24 via 172.31.0.12 dev eth0 proto 77
ip route replace fd00:10:244::/64 via fd00:172:31::12 dev eth0 proto 77
ip route replace 10.244.2.0/24 via 10.244.2.0 dev flatnet.1 onlink proto 77
ip route replace fd00:10:244:2::/64 via fd00:10:244:2:: dev flatnet.1 onlink proto 77
`);
  });

  it("--json: every node with allocated pod CIDRs, desired state and command batches", async () => {
    const { code, stdout } = await run({ file: example, json: true });
    expect(code).toBe(0);
    const output = JSON.parse(stdout);
    expect(output.cluster).toEqual({
      clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"],
      backend: "auto",
      nodeMaskIPv4: 24,
      nodeMaskIPv6: 64,
      vni: 1,
      vxlanPort: 8472,
      mtu: 1500,
      underlayDevice: "eth0",
      vxlanDevice: "flatnet.1",
    });
    expect(output.nodes.map((node: { name: string; podCidrs: string[]; allocatedPodCidrs: string[] }) => [node.name, node.podCidrs, node.allocatedPodCidrs])).toEqual([
      ["node-1", ["10.244.1.0/24", "fd00:10:244:1::/64"], []],
      ["node-2", ["10.244.0.0/24", "fd00:10:244::/64"], ["10.244.0.0/24", "fd00:10:244::/64"]],
      ["node-3", ["10.244.2.0/24", "fd00:10:244:2::/64"], ["10.244.2.0/24", "fd00:10:244:2::/64"]],
    ]);
    const node3 = output.nodes[2];
    expect(node3.desired.peers.map((peer: { mode: string }) => peer.mode)).toEqual(["vxlan", "vxlan", "vxlan", "vxlan"]);
    expect(node3.batches.map((batch: { tool: string }) => batch.tool)).toEqual(["ip", "bridge", "ip"]);
  });

  it("reads JSON as well as YAML", async () => {
    const json = JSON.stringify({ clusterCidrs: ["10.244.0.0/16"], backend: "host-gw", nodes: [{ name: "a", underlayIps: ["172.31.0.1/24"] }, { name: "b", underlayIps: ["172.31.0.2/24"] }] });
    const { code, stdout } = await run({ file: "cluster.json", node: "a" }, json);
    expect(code).toBe(0);
    expect(stdout).toContain("ip route replace 10.244.1.0/24 via 172.31.0.2 dev eth0 proto 77\n");
    expect(stdout).toContain("pod MTU:   1500\n");
  });

  it.each<[string, string, string]>([
    ["bad underlay IP", "clusterCidrs: [10.244.0.0/16]\nnodes:\n  - name: a\n    underlayIps: [172.31.0.300]\n", 'c.yaml: key "nodes.0.underlayIps.0" = "172.31.0.300": IP address "172.31.0.300" has octet 300'],
    ["Kubernetes spelling", "clusterCidrs: [10.244.0.0/16]\nnodes:\n  - name: a\n    underlayIps: [172.31.0.1]\n    podCIDRs: []\n", 'c.yaml: key "nodes.0.podCIDRs" = []: unknown key (check its spelling)'],
    ["bad backend", "clusterCidrs: [10.244.0.0/16]\nbackend: bgp\nnodes: [{ name: a, underlayIps: [172.31.0.1] }]\n", 'c.yaml: key "backend" = "bgp": backend must be one of "host-gw", "vxlan", "auto"'],
    ["no nodes", "clusterCidrs: [10.244.0.0/16]\n", 'c.yaml: key "nodes" = (missing): '],
    ["not YAML", "clusterCidrs: [10.244.0.0/16\n", "flatnet plan: c.yaml is not valid YAML or JSON:\nc.yaml:2:1: "],
    ["duplicate key", "clusterCidrs: [10.244.0.0/16]\nclusterCidrs: [10.245.0.0/16]\n", "flatnet plan: c.yaml is not valid YAML or JSON:\nc.yaml:2:1: Map keys must be unique"],
    ["a list, not a map", "- 1\n", 'c.yaml: key "(root)" = [1]: '],
    ["pool exhausted", "clusterCidrs: [10.244.0.0/24]\nnodeMaskIPv4: 25\nnodes: [{ name: a, underlayIps: [10.0.0.1] }, { name: b, underlayIps: [10.0.0.2] }, { name: c, underlayIps: [10.0.0.3] }]\n", "flatnet plan: c.yaml: "],
    ["unknown --node", "clusterCidrs: [10.244.0.0/16]\nnodes: [{ name: a, underlayIps: [10.0.0.1] }]\n", 'flatnet plan: c.yaml: node "zz" is not in the cluster description (nodes: a)'],
    ["MTU too small for IPv6 pods over VXLAN", "clusterCidrs: [fd00:10::/56]\nmtu: 1300\nnodes: [{ name: a, underlayIps: [10.0.0.1] }]\n", 'flatnet plan: c.yaml: node "a": underlay MTU 1300 leaves a pod MTU of 1250; IPv6 needs at least 1280'],
  ])("bad input (%s): exit 2 and a message naming it", async (_label, input, message) => {
    const { code, stdout, stderr } = await run({ file: "c.yaml", node: _label === "unknown --node" ? "zz" : undefined }, input);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("a missing file: exit 66 and one line", async () => {
    const { code, stderr } = await run({ file: "/nonexistent/cluster.yaml" });
    expect({ code, stderr }).toEqual({ code: 66, stderr: "flatnet plan: cannot read /nonexistent/cluster.yaml: no such file\n" });
  });

  it.each([[["plan"]], [["plan", "x.yaml", "--frobnicate"]]])("usage error %j: exit code 2", async (argv) => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerPlanCommand(program);
    const failure = await program.parseAsync(argv, { from: "user" }).then(() => undefined, (error: { exitCode?: number }) => error);
    expect(failure?.exitCode).toBe(2);
  });

  it("runs as the real CLI (tsx main.ts plan ...): output on stdout, exit codes 0 / 2 / 66", () => {
    const cli = (...args: string[]) =>
      spawnSync(`${root}node_modules/.bin/tsx`, ["--tsconfig", `${root}apps/agent/tsconfig.json`, `${root}apps/agent/src/main.ts`, "plan", ...args], { encoding: "utf8", input: "clusterCidrs: [nope]\n" });
    const good = cli(example, "--node", "node-3");
    expect(good.status).toBe(0);
    expect(good.stdout).toContain("## node node-3\npod CIDRs: 10.244.2.0/24 (allocated), fd00:10:244:2::/64 (allocated)\n");
    const bad = cli("-");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('<stdin>: key "clusterCidrs.0" = "nope": CIDR "nope" has no prefix length');
    const missing = cli(`${root}examples/missing.yaml`);
    expect(missing.status).toBe(66);
  }, 120_000); // a bound for three process starts on a loaded machine, not a speed check
});
