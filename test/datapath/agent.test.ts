import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachPod, readKernelState } from "../../apps/agent/src/linux/index.ts";
import { EmbeddedDatastore } from "../../apps/agent/src/datastore/embedded.ts";
import { createNetns, deleteNetns, sh, skipReason } from "./netns.ts";

const UL = "fn-ta-e-ul";
const NODES = ["fn-ta-e-n1", "fn-ta-e-n2"];
const AGENT_DIR = fileURLToPath(new URL("../../apps/agent/", import.meta.url));

function get(socketPath: string, path: string): Promise<{ status: number; body: unknown; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, timeout: 2_000 }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => {
        const type = String(res.headers["content-type"] ?? "");
        resolve({ status: res.statusCode ?? 0, body: type.includes("json") ? JSON.parse(text) : text, type });
      });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await Promise.resolve().then(condition).catch(() => false))) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skipReason !== undefined)("flatnet agent in two node namespaces (vxlan, dual-stack)", () => {
  let dir: string;
  const agents = new Map<string, ChildProcess>();
  const socket = (i: number) => join(dir, `n${i}.sock`);

  const startAgent = (i: number) => {
    const netns = NODES[i - 1]!;
    const args = [
      "netns", "exec", netns, process.execPath, "--import", "tsx", "src/main.ts", "agent",
      "--node", `n${i}`, "--netns", netns, "--store", join(dir, "store.db"), "--network-config", join(dir, "net.json"),
      "--socket", socket(i), "--underlay-device", "eth0", "--resync-interval", "300ms", "--lease-ttl", "60s", "--log-level", "warn",
    ];
    const child = spawn("ip", args, { cwd: AGENT_DIR, stdio: ["ignore", "ignore", "inherit"] });
    agents.set(`n${i}`, child);
  };
  const stopAgent = async (name: string) => {
    const child = agents.get(name);
    if (child?.pid === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(child.pid, "SIGTERM");
    await exited;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "fn-ta-agent-"));
    writeFileSync(join(dir, "net.json"), JSON.stringify({ clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], backend: "vxlan" }));
    createNetns(UL);
    sh("ip", ["-n", UL, "link", "add", "br0", "type", "bridge"]);
    sh("ip", ["-n", UL, "link", "set", "br0", "up"]);
    NODES.forEach((netns, index) => {
      const i = index + 1;
      createNetns(netns);
      sh("ip", ["-n", UL, "-batch", "-"], `link add ul-${i} type veth peer name eth0 netns ${netns}\nlink set ul-${i} master br0 up\n`);
      sh("ip", ["-n", netns, "-batch", "-"], `addr add 172.31.0.1${i}/24 dev eth0\naddr add fd00::1${i}/64 dev eth0 nodad\nlink set eth0 up\n`);
    });
    startAgent(1);
    startAgent(2);
  });

  afterAll(async () => {
    for (const name of agents.keys()) await stopAgent(name);
    for (const ns of ["fn-ta-e-p1", "fn-ta-e-p2", ...NODES, UL]) deleteNetns(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  it("both agents get ready and publish their node", async () => {
    for (const i of [1, 2]) await until(async () => (await get(socket(i), "/readyz")).status === 200, `agent n${i} ready`);
    const node = await get(socket(1), "/v1/node");
    expect(node.body).toMatchObject({ name: "n1", backend: "vxlan", underlayIps: ["172.31.0.11", "fd00::11"], podMtu: 1450 });
    expect((await get(socket(1), "/nope")).type).toBe("application/problem+json");
  });

  it("each node routes the other's pod CIDRs (both families), and pods reach each other across nodes", async () => {
    const n1 = (await get(socket(1), "/v1/node")).body as { podCidrs: string[] };
    const n2 = (await get(socket(2), "/v1/node")).body as { podCidrs: string[] };
    await until(async () => (await readKernelState(NODES[0]!)).routes.length === 2, "n1's routes");
    expect((await readKernelState(NODES[0]!)).routes.map((r) => r.dst).sort()).toEqual([...n2.podCidrs].sort());
    const pods = [n1, n2].map((node, index) => {
      const pod = createNetns(`fn-ta-e-p${index + 1}`);
      const [v4, v6] = node.podCidrs.map((c) => c.replace(/0\/24$/, "5/24").replace(/::\/64$/, "::5/64"));
      return { pod, index, addresses: [v4!, v6!], gateways: node.podCidrs.map((c) => c.replace(/0\/24$/, "1").replace(/::\/64$/, "::1")) };
    });
    for (const p of pods) {
      await attachPod({ nodeNetns: NODES[p.index]!, podNetns: { name: p.pod }, containerId: `c${p.index}`, ifName: "eth0", addresses: p.addresses, gateways: p.gateways, mtu: 1450 });
    }
    const target4 = pods[1]!.addresses[0]!.split("/")[0]!;
    const target6 = pods[1]!.addresses[1]!.split("/")[0]!;
    expect(sh("ip", ["netns", "exec", "fn-ta-e-p1", "ping", "-c", "1", "-w", "10", target4])).toContain("1 received");
    expect(sh("ip", ["netns", "exec", "fn-ta-e-p1", "ping", "-6", "-c", "1", "-w", "10", target6])).toContain("1 received");
  });

  it("repairs a route deleted by hand within the resync interval", async () => {
    const [route] = (await readKernelState(NODES[0]!)).routes;
    sh("ip", ["-n", NODES[0]!, "route", "del", route!.dst]);
    await until(async () => (await readKernelState(NODES[0]!)).routes.some((r) => r.dst === route!.dst), "the route to come back");
  });

  it("a node whose underlay IP changes republishes it: its peer re-points the FDB entry, pods still reach each other", async () => {
    // Promote the new address when the old primary goes, so the device is never without an IPv4 address.
    sh("ip", ["netns", "exec", NODES[0]!, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1"]);
    sh("ip", ["-n", NODES[0]!, "-batch", "-"], "addr add 172.31.0.21/24 dev eth0\naddr del 172.31.0.11/24 dev eth0\n");
    await until(async () => (await readKernelState(NODES[1]!)).fdb.some((f) => f.dst === "172.31.0.21"), "n2's FDB entry for n1 to move");
    expect((await readKernelState(NODES[1]!)).fdb.map((f) => f.dst)).toEqual(["172.31.0.21"]);
    await until(async () => (await readKernelState(NODES[0]!)).vxlan?.local === "172.31.0.21", "n1's VTEP to move");
    await until(async () => (await readKernelState(NODES[0]!)).routes.length === 2, "n1's routes after the device was recreated");
    const target = ((await get(socket(2), "/v1/node")).body as { podCidrs: string[] }).podCidrs[0]!.replace(/0\/24$/, "5");
    expect(sh("ip", ["netns", "exec", "fn-ta-e-p1", "ping", "-c", "1", "-w", "10", target])).toContain("1 received");
  });

  it("a node that leaves the store has its routes, neighbours and FDB entries removed on its peer", async () => {
    await stopAgent("n2");
    // Routes of a stopped agent stay programmed.
    expect((await readKernelState(NODES[1]!)).routes).toHaveLength(2);
    const store = new EmbeddedDatastore({ path: join(dir, "store.db") });
    await store.remove("n2");
    await store.close();
    await until(async () => {
      const state = await readKernelState(NODES[0]!);
      return state.routes.length === 0 && state.neighbours.length === 0 && state.fdb.length === 0;
    }, "n1 to forget n2");
    const metrics = await get(socket(1), "/metrics");
    expect(metrics.body).toMatch(/flatnet_syncs_total \d+/);
    expect(metrics.body).toMatch(/flatnet_peer_convergence_seconds_count 1/);
  });

  it("SIGTERM leaves the kernel programmed; --cleanup removes flatnet's objects and nothing else", async () => {
    await stopAgent("n1");
    const netns = NODES[1]!;
    const cleanup = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "agent", "--netns", netns, "--cleanup", "--log-level", "warn"], { cwd: AGENT_DIR, stdio: "inherit" });
    expect(await new Promise((r) => cleanup.once("exit", r))).toBe(0);
    expect(await readKernelState(netns)).toEqual({ routes: [], neighbours: [], fdb: [] });
    expect(sh("ip", ["-n", netns, "-br", "link", "show", "fn-br0"])).toContain("fn-br0");
  });
});
