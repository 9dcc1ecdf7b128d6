import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The real `flatnet agent --metrics-address` in a node namespace this test creates (prefix fn-tm-): the TCP
// listener serves /metrics and /readyz, refuses /v1/state, and its socket exists only in the agent's namespace.
// Every request is made from inside that namespace (ip netns exec ... curl), never from the root one.

const PREFIX = "fn-tm-";
const NODE_NS = `${PREFIX}n1`;
const UNDERLAY_IP = "172.31.0.11";
const ADDRESS = `${UNDERLAY_IP}:9471`;
const AGENT_DIR = fileURLToPath(new URL("../../", import.meta.url));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot) console.warn("metrics-listener.netns.test: kernel tests need root (network namespaces); skipped");

function sh(file: string, args: string[], input?: string): string {
  return execFileSync(file, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

function deleteNetns(name: string): void {
  if (!name.startsWith(PREFIX)) throw new Error(`namespace "${name}" must start with "${PREFIX}"`);
  spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
}

/** GET from inside the node namespace: status, content type and body. */
function curlInNetns(path: string): { status: number; type: string; body: string } {
  const out = sh("ip", ["netns", "exec", NODE_NS, "curl", "-sS", "--max-time", "5", "-w", "\n%{http_code} %{content_type}", `http://${ADDRESS}${path}`]);
  const cut = out.lastIndexOf("\n");
  const tail = out.slice(cut + 1);
  const space = tail.indexOf(" ");
  return { status: Number(tail.slice(0, space)), type: tail.slice(space + 1), body: out.slice(0, cut) };
}

/** The flatnet CLI in this (root) namespace: what a user sees on a misconfiguration. */
function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts", "agent", ...args], {
    cwd: AGENT_DIR,
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { status: result.status, stderr: result.stderr };
}

async function until(condition: () => boolean, what: string, limitMs = 60_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    let ok = false;
    try {
      ok = condition();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!isRoot)("flatnet agent --metrics-address in a node namespace", () => {
  let dir: string;
  let agent: ChildProcess | undefined;
  let agentStderr = "";

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "fn-tm-"));
    writeFileSync(join(dir, "net.json"), JSON.stringify({ clusterCidrs: ["10.244.0.0/16"], backend: "vxlan" }));
    deleteNetns(NODE_NS);
    sh("ip", ["netns", "add", NODE_NS]);
    sh("ip", ["-n", NODE_NS, "-batch", "-"], `link set lo up\nlink add eth0 type veth peer name ul0\naddr add ${UNDERLAY_IP}/24 dev eth0\nlink set eth0 up\nlink set ul0 up\n`);
    agent = spawn(
      "ip",
      [
        "netns", "exec", NODE_NS, process.execPath, "--import", "tsx", "src/main.ts", "agent",
        "--node", "n1", "--netns", NODE_NS, "--store", join(dir, "store.db"), "--network-config", join(dir, "net.json"),
        "--socket", join(dir, "n1.sock"), "--underlay-device", "eth0", "--probe-port", "0", "--log-level", "warn", "--metrics-address", ADDRESS,
      ],
      { cwd: AGENT_DIR, stdio: ["ignore", "ignore", "pipe"] },
    );
    agent.stderr!.on("data", (d: Buffer) => (agentStderr += d.toString()));
  });

  afterAll(async () => {
    if (agent?.pid !== undefined && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((r) => agent!.once("exit", r));
      process.kill(agent.pid, "SIGTERM");
      await exited;
    }
    deleteNetns(NODE_NS);
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers /readyz over TCP once the first sync is done", async () => {
    await until(() => {
      if (agent?.exitCode !== null) throw new Error(`agent exited: ${agentStderr}`);
      return curlInNetns("/readyz").status === 200;
    }, `the agent to be ready on ${ADDRESS} (stderr: ${agentStderr})`);
    expect(JSON.parse(curlInNetns("/readyz").body)).toEqual({ status: "ready" });
    expect(JSON.parse(curlInNetns("/healthz").body)).toEqual({ status: "ok" });
  }, 90_000);

  it("serves the flatnet_* figures on /metrics in Prometheus text format", () => {
    const res = curlInNetns("/metrics");
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const line of [/^flatnet_ready 1$/m, /^flatnet_syncs_total [1-9]\d*$/m, /^flatnet_peers 0$/m, /^flatnet_datastore_info\{kind="embedded"\} 1$/m, /^# TYPE flatnet_sync_duration_seconds histogram$/m]) {
      expect(res.body).toMatch(line);
    }
  });

  it.each([["/v1/state"], ["/v1/node"], ["/"]])("refuses %s with 404 problem+json", (path) => {
    const res = curlInNetns(path);
    expect([res.status, res.type]).toEqual([404, "application/problem+json"]);
    expect(JSON.parse(res.body)).toMatchObject({ status: 404, detail: `no route for GET ${path}` });
  });

  it("listens only in the agent's namespace, on the given address", () => {
    const inNetns = sh("ip", ["netns", "exec", NODE_NS, "ss", "-Hltnp", "sport = :9471"]).trim().split("\n");
    expect(inNetns).toHaveLength(1);
    expect(inNetns[0]).toContain(ADDRESS);
    const pid = /pid=(\d+)/.exec(inNetns[0]!)?.[1];
    expect(pid).toBeDefined();
    // Read-only look at the root namespace's listening TCP sockets: none belongs to the agent.
    const root = sh("ss", ["-Hltnp"]);
    expect(root).not.toMatch(new RegExp(`pid=${pid},`));
  });

  it.each([
    ["taken by the running agent", ADDRESS, `"${ADDRESS}": cannot listen: EADDRINUSE (another process listens there)`],
    ["on no interface of the namespace", "172.31.0.99:9471", '"172.31.0.99:9471": cannot listen: EADDRNOTAVAIL'],
  ])("a second agent whose address is %s exits 1 naming it, and does not hang", (_label, address, message) => {
    const result = spawnSync(
      "ip",
      [
        "netns", "exec", NODE_NS, process.execPath, "--import", "tsx", "src/main.ts", "agent",
        "--node", "n2", "--netns", NODE_NS, "--store", join(dir, "store.db"), "--network-config", join(dir, "net.json"),
        "--socket", join(dir, "n2.sock"), "--underlay-device", "eth0", "--probe-port", "0", "--log-level", "warn", "--metrics-address", address,
      ],
      { cwd: AGENT_DIR, encoding: "utf8", timeout: 60_000 },
    );
    expect(result.stderr).toContain(`flatnet agent: --metrics-address ${message}`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.status).toBe(1);
    // The first agent still serves.
    expect(curlInNetns("/readyz").status).toBe(200);
  }, 60_000);
});

describe.skipIf(!isRoot)("flatnet agent --metrics-address: bad values exit 2 before touching anything", () => {
  it.each([
    ["a port out of range (flag)", ["--metrics-address", "127.0.0.1:70000"], {}, 'flag --metrics-address = "127.0.0.1:70000": must be HOST:PORT'],
    ["a malformed env value", [], { FLATNET_METRICS_ADDRESS: "9471" }, 'env FLATNET_METRICS_ADDRESS = "9471": must be HOST:PORT'],
    ["an agent outside its namespace", ["--metrics-address", "127.0.0.1:9471"], {}, `needs the agent to run inside network namespace "${PREFIX}absent"`],
  ])("%s", (_label, extra, env, message) => {
    const { status, stderr } = cli(["--node", "n1", "--netns", `${PREFIX}absent`, "--store", "/nonexistent/store.db", ...extra], env);
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(status).toBe(2);
  }, 60_000);
});
