import { spawn, type ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "../../apps/agent/test-support/wait-until.ts";
import { flatnetCommand } from "../../apps/agent/src/lab/supervisor.ts";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";

// `flatnet agent --datastore kubernetes` as the DaemonSet runs it: the process in a namespace that reaches the
// apiserver (here the root namespace's loopback, where the fake listens), programming the node's namespace by name
// (`--netns`; on a node that is "host"). The node namespace is one this test creates (prefix fn-tk-).
const run = promisify(execFile);
const NETNS = "fn-tk-k1";
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("skipping the agent-on-Kubernetes test: it creates a network namespace and needs root");

function get(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, timeout: 3000 }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function flatnetRoutes(): Promise<string[]> {
  const { stdout } = await run("ip", ["-n", NETNS, "-j", "route", "show", "proto", "77"]);
  return (JSON.parse(stdout || "[]") as { dst: string; gateway?: string }[]).map((r) => `${r.dst} via ${r.gateway}`).sort();
}

describe.skipIf(!isRoot)("flatnet agent --datastore kubernetes against the fake apiserver", { timeout: 90_000 }, () => {
  const fake = new FakeApiServer();
  let dir = "";
  let agent: ChildProcess | undefined;
  let log = "";

  beforeAll(async () => {
    await run("ip", ["netns", "del", NETNS]).catch(() => undefined);
    await run("ip", ["netns", "add", NETNS]);
    for (const args of [["link", "add", "ens5", "type", "veth", "peer", "name", "ens5-peer"], ["addr", "add", "172.31.9.11/24", "dev", "ens5"], ["link", "set", "ens5-peer", "up"], ["link", "set", "ens5", "up"], ["link", "set", "lo", "up"]]) {
      await run("ip", ["-n", NETNS, ...args]);
    }
    await fake.start();
    dir = await mkdtemp(join(tmpdir(), "fnk-agent-kube-"));
  });
  afterAll(async () => {
    if (agent?.pid !== undefined && agent.exitCode === null) {
      agent.kill("SIGTERM");
      await new Promise((resolve) => agent!.once("exit", resolve));
    }
    await fake.stop();
    await run("ip", ["netns", "del", NETNS]).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("publishes its annotations, routes to peers from Node objects, writes the subnet file, drops a deleted Node", async () => {
    const node = (name: string, ip: string, cidr: string) => ({
      metadata: { name },
      spec: { podCIDR: cidr, podCIDRs: [cidr] },
      status: { addresses: [{ type: "InternalIP", address: ip }], conditions: [{ type: "Ready", status: "True" }] },
    });
    fake.putNode(node("k1", "172.31.9.11", "10.244.1.0/24"));
    fake.putNode(node("k2", "172.31.9.12", "10.244.2.0/24"));
    fake.putNode(node("k3", "172.31.9.13", "10.244.3.0/24"));
    await writeFile(join(dir, "kubeconfig"), fake.kubeconfig());
    await writeFile(join(dir, "net-conf.json"), JSON.stringify({ clusterCidrs: ["10.244.0.0/16"], backend: "host-gw" }));
    await writeFile(
      join(dir, "agent.yaml"),
      ["datastore: kubernetes", `kubeconfig: ${join(dir, "kubeconfig")}`, `networkConfig: ${join(dir, "net-conf.json")}`, `subnetFile: ${join(dir, "subnet.json")}`, "resyncInterval: 1s"].join("\n"),
    );
    const socket = join(dir, "agent.sock");
    const [command, ...args] = flatnetCommand();
    // The node's NIC is ens5 and nothing names it: the agent finds it by the node IP, as the DaemonSet passes it.
    agent = spawn(command!, [...args, "agent", "--config", join(dir, "agent.yaml"), "--netns", NETNS, "--socket", socket, "--no-masquerade", "--node-ip", "172.31.9.11"], {
      env: { ...process.env, FLATNET_NODE: "k1", FLATNET_LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    agent.stderr!.on("data", (chunk) => (log += chunk));
    await waitUntil("the agent to be ready", async () => {
      if (agent!.exitCode !== null) throw new Error(`agent exited ${agent!.exitCode}: ${log}`);
      return (await get(socket, "/readyz").catch(() => ({ status: 0 }))).status === 200;
    }, { timeoutMs: 60_000, intervalMs: 100 });

    expect(fake.getNode("k1")!.metadata.annotations).toMatchObject({ "flatnet.io/underlay-ips": "172.31.9.11" });
    await waitUntil("routes to k2 and k3", async () => (await flatnetRoutes()).length === 2);
    expect(await flatnetRoutes()).toEqual(["10.244.2.0/24 via 172.31.9.12", "10.244.3.0/24 via 172.31.9.13"]);
    expect(JSON.parse(await readFile(join(dir, "subnet.json"), "utf8"))).toEqual({ podCidrs: ["10.244.1.0/24"], mtu: 1500 });
    const metrics = (await get(socket, "/metrics")).body;
    expect(metrics).toContain('flatnet_datastore_info{kind="kubernetes"} 1');

    fake.deleteNode("k3");
    await waitUntil("the route to the deleted k3 to go", async () => (await flatnetRoutes()).length === 1);
    expect(await flatnetRoutes()).toEqual(["10.244.2.0/24 via 172.31.9.12"]);
  });
});
