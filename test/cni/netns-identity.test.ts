// Issue 11 item 2: the fast path acts on the very network namespace the runtime named. The runtime's side (the plugin
// binary, Bun or native) sends CNI_NETNS's (dev, ino) as it sees it; the worker, in the host's mount namespace,
// compares with its own stat and declines (409) when they differ, and the plugin then does the call in-process.
// Runtime in a private mount namespace (`unshare -m`, the netns bind-mounted there only): ADD lands in that netns.
// A /proc/PID/ns/net path both sides see alike: the worker does the ADD (no needless fallback).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addressesOf, createNamespaces, installNativeClient, installPlugin, isRoot, NATIVE_CLIENT, runPlugin, sh, startWorker, tempDir } from "./helpers.ts";

const NODE = "fn-hc-id-node";
const POD = "fn-hc-id-pod";
const PRIVATE = "fn-hc-id-priv";

if (!isRoot) console.log("skipping CNI netns-identity kernel tests: they need root (network and mount namespaces)");

describe.skipIf(!isRoot)("CNI fast path: the worker acts only on the netns the runtime named", { timeout: 60_000 }, () => {
  const dir = tempDir("fn-hc-id-");
  const workerSocket = join(dir.path, "worker.sock");
  const clients: { name: string; binary: string }[] = [];
  let worker: { stop(): void } | undefined;
  let cleanup = () => {};

  beforeAll(async () => {
    clients.push({ name: "Bun client", binary: installPlugin(join(dir.path, "bun")) });
    if (existsSync(NATIVE_CLIENT)) clients.push({ name: "native client", binary: installNativeClient(join(dir.path, "native")) });
    cleanup = createNamespaces([NODE, POD]);
    worker = await startWorker(clients[0]!.binary, workerSocket);
  });
  afterAll(() => {
    worker?.stop();
    sh("ip", ["netns", "del", PRIVATE]); // only if a failed run left the (host-side, empty) file behind
    rmSync(`/run/netns/${PRIVATE}`, { force: true });
    cleanup();
    dir.remove();
  });

  const conf = () =>
    JSON.stringify({ cniVersion: "1.0.0", name: "fn-hc-id", type: "flatnet", podCidrs: ["10.80.1.0/24"], nodeNetns: NODE, dataDir: join(dir.path, "ipam"), bridge: "fn-hc-br0", agentSocket: workerSocket });

  it.each([0, 1])("runtime in a private mount namespace (client %i): ADD succeeds in-process and the veth lands in that netns", (index) => {
    const client = clients[index];
    if (client === undefined) return console.log("skipping: the native client is not built");
    const confFile = join(dir.path, "conf.json");
    writeFileSync(confFile, conf());
    const out = (name: string) => join(dir.path, `${index}-${name}`);
    const cni = (command: string) =>
      `CNI_COMMAND=${command} CNI_CONTAINERID=priv-${index} CNI_NETNS=/run/netns/${PRIVATE} CNI_IFNAME=eth0 CNI_PATH=/x FLATNET_CNI_TRACE=1 '${client.binary}' < '${confFile}'`;
    // Everything of the private namespace happens inside it; its netns is deleted there too.
    const script = [
      `ip netns add ${PRIVATE}`,
      `${cni("ADD")} > '${out("add.json")}' 2> '${out("add.err")}'; echo $? > '${out("add.rc")}'`,
      `ip -n ${PRIVATE} -json addr show dev eth0 > '${out("addr.json")}' 2>&1`,
      `${cni("DEL")} > /dev/null 2>&1; echo $? > '${out("del.rc")}'`,
      `ip netns del ${PRIVATE}`,
    ].join("\n");
    const run = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    const add = readFileSync(out("add.json"), "utf8");
    expect(readFileSync(out("add.rc"), "utf8").trim(), add).toBe("0");
    const address = (JSON.parse(add) as { ips: { address: string }[] }).ips[0]!.address;
    const inPod = (JSON.parse(readFileSync(out("addr.json"), "utf8")) as { addr_info: { local: string; prefixlen: number; scope: string }[] }[])[0]!.addr_info;
    expect(inPod.filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`)).toEqual([address]);
    if (index === 0) expect(readFileSync(out("add.err"), "utf8")).toMatch(/in-process \(the agent at .* answered HTTP 409/);
    expect(readFileSync(out("del.rc"), "utf8").trim()).toBe("0");
  });

  it.each([0, 1])("CNI_NETNS as /proc/PID/ns/net of a process in the pod netns (client %i): the worker does the ADD", async (index) => {
    const client = clients[index];
    if (client === undefined) return console.log("skipping: the native client is not built");
    const holder = spawn("ip", ["netns", "exec", POD, "sleep", "600"], { stdio: "ignore" });
    try {
      const path = `/proc/${holder.pid}/ns/net`;
      const target = sh("stat", ["-L", "-c", "%i", `/run/netns/${POD}`]).stdout.trim();
      // `ip netns exec` execs sleep in place: wait (bounded) until the process is inside the pod namespace.
      for (let i = 0; i < 5000 && sh("stat", ["-L", "-c", "%i", path]).stdout.trim() !== target; i++) await new Promise((r) => setImmediate(r));
      const env = (command: string) => ({ CNI_COMMAND: command, CNI_CONTAINERID: `proc-${index}`, CNI_NETNS: path, CNI_IFNAME: "eth0", CNI_PATH: "/x", FLATNET_CNI_TRACE: "1" });
      const add = await runPlugin(env("ADD"), conf(), client.binary);
      expect(add.code, add.stdout + add.stderr).toBe(0);
      expect(addressesOf(POD, "eth0")).toEqual([(add.json?.ips as { address: string }[])[0]!.address]);
      if (index === 0) expect(add.stderr).toContain(`delegated to ${workerSocket}`);
      else expect(add.stderr).not.toContain("in-process"); // the native client prints nothing itself; flatnet-bun would
      expect((await runPlugin(env("DEL"), conf(), client.binary)).code).toBe(0);
    } finally {
      holder.kill("SIGKILL");
    }
  });
});
