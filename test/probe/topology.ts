import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ProbeInventory, StateTables } from "@flatnet/core";
import type { KernelNode } from "../../apps/agent/src/probe/node-state.ts";

// A small host-gw flat network built by hand in namespaces prefixed fn-tp- (the probes engineer's prefix):
// fn-tp-ul (underlay bridge), fn-tp-n<N> (nodes: eth0 172.31.0.1N, bridge fn-br0 10.244.N.1/24, proto 77
// routes to the other nodes' pod CIDRs), fn-tp-p<N>-<i> (pods 10.244.N.(i+2)). Nothing touches the root namespace.

export const PREFIX = "fn-tp-";
// Namespace prefixes these helpers may create or act in: the probes tests', the node-endpoint tests' (fn-tn-),
// the dial-guard tests' (fn-hn-), check --deploy's (fn-cl-), the extension's cluster e2e (fn-vs-), the tracer's (fn-tr-, fn-tw-, fn-tx-) and its novel-fault catalogue (fn-nu-t-).
const ALLOWED_PREFIXES = [PREFIX, "fn-tn-", "fn-hn-", "fn-cl-", "fn-vs-", "fn-tr-", "fn-tw-", "fn-tx-", "fn-nu-t-"];
const allowed = (name: string): boolean => ALLOWED_PREFIXES.some((p) => name.startsWith(p));
const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const responderCli = join(repo, "apps/agent/src/probe/responder-cli.ts");

export interface TestPod {
  name: string;
  node: string;
  netns: string;
  ip: string;
}

export interface TestNode {
  name: string;
  index: number;
  netns: string;
  ip: string;
  podCidr: string;
}

export class ProbeTopology {
  readonly nodes: TestNode[] = [];
  readonly pods: TestPod[] = [];
  readonly dir: string;
  private readonly processes = new Map<string, ChildProcess>();

  constructor(readonly tag: string, nodeCount: number, podsPerNode: number, readonly prefix: string = PREFIX) {
    if (!ALLOWED_PREFIXES.includes(prefix)) throw new Error(`namespace prefix ${prefix} is not one of ${ALLOWED_PREFIXES.join(", ")}`);
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    for (let n = 1; n <= nodeCount; n++) {
      this.nodes.push({ name: `node-${n}`, index: n, netns: `${prefix}${tag}n${n}`, ip: `172.31.0.${10 + n}`, podCidr: `10.244.${n}.0/24` });
      for (let i = 0; i < podsPerNode; i++) {
        this.pods.push({ name: `pod-${n}-${i}`, node: `node-${n}`, netns: `${prefix}${tag}p${n}-${i}`, ip: `10.244.${n}.${i + 2}` });
      }
    }
  }

  get underlay(): string {
    return `${this.prefix}${this.tag}ul`;
  }

  node(name: string): TestNode {
    const node = this.nodes.find((n) => n.name === name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  /** Build every namespace, link, address and route. */
  up(): void {
    this.down();
    netnsAdd(this.underlay);
    ipBatch(this.underlay, ["link set lo up", "link add br0 type bridge", "link set br0 up"]);
    for (const node of this.nodes) {
      netnsAdd(node.netns);
      ipBatch(this.underlay, [`link add u${node.index} type veth peer name eth0 netns ${node.netns}`, `link set u${node.index} master br0`, `link set u${node.index} up`]);
      const lines = [
        "link set lo up",
        `addr add ${node.ip}/24 dev eth0`,
        "link set eth0 up",
        "link add fn-br0 type bridge",
        `addr add 10.244.${node.index}.1/24 dev fn-br0`,
        "link set fn-br0 up",
      ];
      for (const peer of this.nodes) {
        if (peer !== node) lines.push(`route add ${peer.podCidr} via ${peer.ip} dev eth0 proto 77`);
      }
      for (const pod of this.pods.filter((p) => p.node === node.name)) {
        netnsAdd(pod.netns);
        const host = `fnv${pod.name.split("-").pop()}`;
        lines.push(`link add ${host} type veth peer name eth0 netns ${pod.netns}`, `link set ${host} master fn-br0`, `link set ${host} up`);
      }
      ipBatch(node.netns, lines);
      execFileSync("ip", ["netns", "exec", node.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      for (const pod of this.pods.filter((p) => p.node === node.name)) {
        ipBatch(pod.netns, ["link set lo up", `addr add ${pod.ip}/24 dev eth0`, "link set eth0 up", `route add default via 10.244.${node.index}.1`]);
      }
    }
  }

  /** Remove every namespace of this topology (by exact name, then by prefix scan) and stop our processes. */
  down(): void {
    this.stopResponders();
    const names = [this.underlay, ...this.nodes.map((n) => n.netns), ...this.pods.map((p) => p.netns)];
    const existing = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((n) => n.startsWith(`${this.prefix}${this.tag}`));
    for (const name of new Set([...names.filter((n) => existing.includes(n)), ...existing])) {
      try {
        execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
  }

  cleanup(): void {
    this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }

  controlSocket(pod: string): string {
    return join(this.dir, `${pod}.sock`);
  }

  /** The probe token file the responders share (written by startResponders). */
  get tokenFile(): string {
    return join(this.dir, "probe-token");
  }

  /** Start one responder process per pod inside its namespace; resolves when each printed its ready line. */
  async startResponders(port: number, token = "fn-test-probe-token-0123456789", extraArgs: (pod: TestPod) => string[] = () => []): Promise<void> {
    writeFileSync(this.tokenFile, token, { mode: 0o600 });
    await Promise.all(
      this.pods.map((pod) => {
        const node = this.node(pod.node);
        return this.startProcess(pod.name, pod.netns, [
          responderCli,
          "--pod", pod.name,
          "--node", pod.node,
          "--port", String(port),
          "--pod-ip", pod.ip,
          "--node-pod-cidr", node.podCidr,
          "--node-ip", node.ip,
          "--control-socket", this.controlSocket(pod.name),
          "--token-file", this.tokenFile,
          ...this.nodes.flatMap((n) => ["--allow-cidr", n.podCidr, "--allow-cidr", n.ip]),
          ...extraArgs(pod),
        ]);
      }),
    );
  }

  /** Start a process in a namespace with node + tsx (resolving @flatnet/core to its sources); waits for its first stdout line. */
  startProcess(key: string, netns: string, args: string[]): Promise<ChildProcess> {
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, "--import", "tsx", ...args], {
      cwd: repo,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(repo, "apps/agent/tsconfig.json") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.processes.set(key, child);
    return new Promise((resolvePromise, reject) => {
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
      child.stdout!.setEncoding("utf8").once("data", () => resolvePromise(child));
      child.once("exit", (code) => reject(new Error(`${key} in ${netns} exited ${code}: ${stderr.trim()}`)));
    });
  }

  /** Stop one started process by its PID (SIGTERM, or `signal`) and wait for it to exit. */
  async stopProcess(key: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.processes.get(key);
    if (child === undefined) return;
    this.processes.delete(key);
    if (child.exitCode !== null) return;
    await new Promise<void>((resolvePromise) => {
      child.once("exit", () => resolvePromise());
      child.kill(signal);
    });
  }

  stopResponders(): void {
    for (const child of this.processes.values()) if (child.exitCode === null) child.kill("SIGTERM");
    this.processes.clear();
  }

  inventory(port: number): ProbeInventory {
    return {
      cluster: { name: `netns-${this.tag}`, source: "fixture" },
      nodes: this.nodes.map((n) => ({ name: n.name, podCidrs: [n.podCidr], nodeIps: [n.ip] })),
      pods: this.pods.map((p) => ({ name: p.name, node: p.node, ips: [p.ip], port })),
    };
  }

  /** Diagnosis state read from the nodes' namespaces, with the routes each node should have. */
  kernelNodes(podMtu: number): Map<string, KernelNode> {
    return new Map(
      this.nodes.map((node) => {
        const desired: StateTables = {
          routes: this.nodes.filter((p) => p !== node).map((p) => ({ dst: p.podCidr, via: p.ip, dev: "eth0" })),
          neighbours: [],
          fdb: [],
        };
        return [node.name, { netns: node.netns, podCidrs: [node.podCidr], nodeIps: [node.ip], podMtu, underlayDevice: "eth0", encapOverhead: 0, desired }];
      }),
    );
  }
}

export function netnsAdd(name: string): void {
  if (!allowed(name)) throw new Error(`refusing to create namespace ${name} outside the ${ALLOWED_PREFIXES.join("/")} prefixes`);
  execFileSync("ip", ["netns", "add", name]);
}

export function ipBatch(netns: string, lines: string[]): void {
  if (!allowed(netns)) throw new Error(`refusing to act in namespace ${netns} outside the ${ALLOWED_PREFIXES.join("/")} prefixes`);
  execFileSync("ip", ["-n", netns, "-batch", "-"], { input: `${lines.join("\n")}\n` });
}

export function inNetns(netns: string, cmd: string, args: string[], input?: string, ignoreFailure = false): string {
  if (!allowed(netns)) throw new Error(`refusing to act in namespace ${netns} outside the ${ALLOWED_PREFIXES.join("/")} prefixes`);
  try {
    return execFileSync("ip", ["netns", "exec", netns, cmd, ...args], { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...(input === undefined ? {} : { input }) });
  } catch (error) {
    if (ignoreFailure) return "";
    throw error;
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
