// Least privilege, measured: the real agent (dist/main.js) runs in a node namespace as root with exactly the
// capabilities deploy/daemonset.yaml adds (setpriv drops every other one from its bounding set, so neither it nor the
// tools it runs, `ip`, `nft`, `sysctl`, can have them), syncs, and attaches a pod through its CNI worker; then once
// without each of those capabilities, to show what breaks. Read from the manifest, so a change there is tested here.
// AppArmor is not on this kernel (no /sys/kernel/security/apparmor): the Unconfined profile cannot be measured here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tryGetJson } from "../../apps/agent/src/http/client.ts";
import { addUnderlay, createNamespaces, installPlugin, isRoot, linksOf, runPlugin, type RunningAgent, sh, startAgent, stopAgent, tempDir, waitFor } from "./helpers.ts";

const NODE = "fn-rt-cap-node";
const POD = "fn-rt-cap-pod";
const NET = "fn-rt-cap";

type Obj = Record<string, any>;
const daemonSet = parseAllDocuments(readFileSync(fileURLToPath(new URL("../../deploy/daemonset.yaml", import.meta.url)), "utf8"))
  .map((d) => d.toJS() as Obj)
  .find((d) => d.kind === "DaemonSet")!;
const agentContainer = daemonSet.spec.template.spec.containers.find((c: Obj) => c.name === "agent");
const GRANTED: string[] = agentContainer.securityContext.capabilities.add;

const haveSetpriv = sh("setpriv", ["--version"]).status === 0;
if (!isRoot || !haveSetpriv) console.log("skipping the capabilities test: it needs root and setpriv (util-linux)");

/** setpriv keeping only `caps` (Kubernetes spelling) in the bounding set: root's processes get those and no others. */
const keepOnly = (caps: string[]) => ["setpriv", "--bounding-set", ["-all", ...caps.map((c) => `+${c.toLowerCase()}`)].join(","), "--"];

describe.skipIf(!isRoot || !haveSetpriv)("the agent with the DaemonSet's capabilities, and without each", { timeout: 240_000 }, () => {
  const data = tempDir("fn-rt-caps-");
  let plugin = "";
  let cleanup = () => {};
  const conf = (agentDir: string) =>
    JSON.stringify({ cniVersion: "1.0.0", name: NET, type: "flatnet", podCidrs: ["10.79.0.0/24"], nodeNetns: NODE, dataDir: join(data.path, "ipam"), agentSocket: join(agentDir, "agent-cni.sock") });
  const cni = (command: string, agentDir: string) =>
    runPlugin({ CNI_COMMAND: command, CNI_CONTAINERID: "caps", CNI_NETNS: `/run/netns/${POD}`, CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni", FLATNET_CNI_TRACE: "1" }, conf(agentDir), plugin);

  /** Starts the agent under `caps`; what it reached: ready (first sync), a delegated ADD, and what it logged. */
  async function attempt(label: string, caps: string[]): Promise<{ ready: boolean; add: string; log: string }> {
    const agentDir = join(data.path, label);
    let agent: RunningAgent | undefined;
    try {
      agent = await startAgent(NODE, agentDir, plugin, {}, keepOnly(caps));
    } catch (error) {
      return { ready: false, add: "no worker", log: (error as Error).message };
    }
    try {
      const apiSocket = agent.apiSocket;
      // Ready, or the sync's error reported by /readyz (503 with lastError), whichever comes first.
      let readyz = await tryGetJson({ socketPath: apiSocket }, "/readyz");
      await waitFor("the agent's first sync or its failure", async () => {
        readyz = await tryGetJson({ socketPath: apiSocket }, "/readyz");
        return readyz?.status === 200 || agent!.log().includes('"msg":"sync failed"');
      });
      const add = await cni("ADD", agentDir);
      const delegated = /flatnet-cni: delegated to /.test(add.stderr);
      if (add.code === 0) expect((await cni("DEL", agentDir)).code).toBe(0);
      return { ready: readyz?.status === 200, add: add.code === 0 ? (delegated ? "ok (worker)" : "ok (in-process)") : String(add.json?.msg ?? add.stderr), log: agent.log() + (readyz?.body ?? "") };
    } finally {
      await stopAgent(agent);
      sh("ip", ["netns", "exec", NODE, "nft", "delete", "table", "inet", "flatnet"]);
    }
  }

  beforeAll(() => {
    plugin = installPlugin(data.path);
    cleanup = createNamespaces([NODE, POD]);
    addUnderlay(NODE, "10.78.0.1/24");
  }, 120_000);
  afterAll(() => {
    cleanup();
    data.remove();
  });

  it("the DaemonSet adds NET_ADMIN and SYS_ADMIN and nothing else (NET_RAW dropped: see below)", () => {
    expect(GRANTED).toEqual(["NET_ADMIN", "SYS_ADMIN"]);
    expect(agentContainer.securityContext.capabilities.drop).toEqual(["ALL"]);
  });

  it("with exactly those (no NET_RAW, which the DaemonSet granted before) the agent syncs and attaches a pod through its worker", async () => {
    const outcome = await attempt("all", GRANTED);
    expect({ ready: outcome.ready, add: outcome.add }).toEqual({ ready: true, add: "ok (worker)" });
    expect(linksOf(NODE, "fnv")).toEqual([]);
  });

  it.each([
    // `ip -n host` (the agent's own namespace, by name) is setns(2) + a private mount namespace to remount /sys.
    // Without it the agent cannot even read its underlay device; the CNI worker could not enter pods' namespaces either.
    ["SYS_ADMIN", /underlay device "eth0" in namespace "fn-rt-cap-node" cannot be read: setting the network namespace "fn-rt-cap-node" failed: Operation not permitted/],
    // Links, addresses, routes, nftables, sysctls: every write the agent makes fails (a forwarding sysctl that is
    // already 1, as the run above left it, is no error since a read-only /proc/sys is allowed: the next write fails).
    ["NET_ADMIN", /Operation not permitted/],
  ])("without %s the agent does not get ready", async (cap, why) => {
    const outcome = await attempt(`no-${cap}`, GRANTED.filter((c) => c !== cap));
    expect(outcome.ready).toBe(false);
    expect(outcome.log).toMatch(why);
  });
});
