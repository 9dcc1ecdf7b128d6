// Issue 14 item 5: a name that reaches an iproute2 batch line (netconf bridge, CNI_IFNAME, CNI_NETNS) is refused before
// any process runs, in-process and through the agent's CNI worker: "#" would start a comment ("addr del ... dev eth0#"
// removed the node's underlay address), quotes and "\" quote, whitespace splits a line into extra words.
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INTERFACE_NAME_PATTERN } from "@flatnet/core";
import { addressesOf, createNamespaces, installPlugin, isRoot, linksOf, runPlugin, sh, startWorker, tempDir } from "./helpers.ts";

const NODE = "fn-hc-in-node";
const POD = "fn-hc-in-pod";
const UNDERLAY = "172.31.0.11/24";

if (!isRoot) console.log("skipping CNI interface-name kernel tests: they need root (network namespaces)");

describe.skipIf(!isRoot)("CNI: names that reach iproute2 follow the one interface-name rule", { timeout: 60_000 }, () => {
  const dir = tempDir("fn-hc-names-");
  const ipLog = join(dir.path, "ip.log");
  const workerSocket = join(dir.path, "worker.sock");
  const path = `${join(dir.path, "wrap")}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`;
  let plugin = "";
  let worker: { stop(): void } | undefined;
  let cleanup = () => {};

  beforeAll(async () => {
    plugin = installPlugin(dir.path);
    // An `ip` first on PATH that records each start, then runs the real one: "no ip process started" is observable.
    sh("mkdir", ["-p", join(dir.path, "wrap")]);
    writeFileSync(join(dir.path, "wrap", "ip"), `#!/bin/sh\necho "$*" >> '${ipLog}'\nexec /usr/sbin/ip "$@"\n`);
    chmodSync(join(dir.path, "wrap", "ip"), 0o755);
    cleanup = createNamespaces([NODE, POD]);
    sh("ip", ["-n", NODE, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"]); // no dummy module here
    sh("ip", ["-n", NODE, "addr", "add", UNDERLAY, "dev", "eth0"]);
    sh("ip", ["-n", NODE, "link", "set", "eth0", "up"]);
    // The worker with iproute2 for every kernel step (FLATNET_CNI_NETLINK=0), so a line it ran would show in the log.
    worker = await startWorker(plugin, workerSocket, { PATH: path, FLATNET_CNI_NETLINK: "0" });
  });
  afterAll(() => {
    worker?.stop();
    cleanup();
    dir.remove();
  });

  const conf = (extra: Record<string, unknown>) =>
    JSON.stringify({ cniVersion: "1.0.0", name: "fn-hc-net", type: "flatnet", podCidrs: ["10.78.1.0/24"], nodeNetns: NODE, dataDir: join(dir.path, "ipam"), ...extra });
  const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "ctr-names", CNI_NETNS: `/run/netns/${POD}`, CNI_IFNAME: "eth0", CNI_PATH: "/x", PATH: path };

  const cases: [string, Record<string, unknown>, Record<string, string>, number, string][] = [
    ["bridge eth0#", { bridge: "eth0#" }, {}, 7, '"eth0#"'],
    ['bridge br"0', { bridge: 'br"0' }, {}, 7, '"br\\"0"'],
    ["bridge br0\\", { bridge: "br0\\" }, {}, 7, '"br0\\\\"'],
    ["CNI_IFNAME eth0#", {}, { CNI_IFNAME: "eth0#" }, 4, 'CNI_IFNAME "eth0#" is refused'],
    ["CNI_NETNS with a space", {}, { CNI_NETNS: `/run/netns/${POD} mtu 1` }, 4, "without whitespace"],
    ["CNI_NETNS with a tab", {}, { CNI_NETNS: `/run/netns/${POD}\tx` }, 4, "without whitespace"],
  ];
  for (const via of ["in-process", "worker"] as const) {
    it.each(cases)(`${via}: %s is error %s, no ip process started, the node's addresses unchanged`, async (_name, netconf, overrides, code, text) => {
      writeFileSync(ipLog, "");
      const stdin = conf(via === "worker" ? { ...netconf, agentSocket: workerSocket } : netconf);
      const run = await runPlugin({ ...env, ...overrides }, stdin, plugin);
      expect(run.code).toBe(1);
      expect(run.json).toMatchObject({ code });
      expect(String(run.json?.msg)).toContain(text);
      expect(existsSync(ipLog) ? readFileSync(ipLog, "utf8") : "").toBe("");
      expect(addressesOf(NODE, "eth0")).toEqual([UNDERLAY]);
      expect(linksOf(NODE, "fnv")).toEqual([]);
      expect(linksOf(POD)).toEqual(["lo"]);
    });
  }

  // The real binary over fuzzed names the rule refuses: error 4 or 7, no ip process, the node's and the root
  // namespace's links and addresses as they were.
  it("fuzz: any refused bridge or CNI_IFNAME, any CNI_NETNS with whitespace or control characters, changes nothing", async () => {
    const state = () => [sh("ip", ["-n", NODE, "-json", "addr"]).stdout, sh("ip", ["-json", "addr"]).stdout];
    const before = state();
    const refused = fc.string({ unit: fc.constantFrom("e", "0", "#", '"', "'", "\\", " ", "\t", "\n", "/", ":", ".", "-", "é", "\u0001"), minLength: 1, maxLength: 17 }).filter((n) => !INTERFACE_NAME_PATTERN.test(n));
    const badPath = fc.tuple(fc.constantFrom(" ", "\t", "\n", "\u0001", "\u0085"), fc.string({ maxLength: 8 })).map(([ws, tail]) => `/run/netns/${POD}${ws}${tail}`);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          refused.map((name) => ({ netconf: { bridge: name }, env: {} })),
          refused.map((name) => ({ netconf: {}, env: { CNI_IFNAME: name } })),
          badPath.map((path) => ({ netconf: {}, env: { CNI_NETNS: path } })),
        ),
        async ({ netconf, env: overrides }) => {
          writeFileSync(ipLog, "");
          const run = await runPlugin({ ...env, ...overrides }, conf(netconf), plugin);
          expect(run.code).toBe(1);
          expect([4, 7]).toContain(run.json?.code);
          expect(readFileSync(ipLog, "utf8")).toBe("");
        },
      ),
      { numRuns: 40 },
    );
    expect(state()).toEqual(before);
  });

  it("a valid ADD through the same wrapper runs ip (the wrapper records it) and leaves the underlay address alone", async () => {
    writeFileSync(ipLog, "");
    const run = await runPlugin(env, conf({ bridge: "fn-hc-br0" }), plugin);
    expect(run.code, run.stdout).toBe(0);
    expect(readFileSync(ipLog, "utf8")).not.toBe("");
    expect(addressesOf(NODE, "eth0")).toEqual([UNDERLAY]);
    expect((await runPlugin({ ...env, CNI_COMMAND: "DEL" }, conf({ bridge: "fn-hc-br0" }), plugin)).code).toBe(0);
  });
});
