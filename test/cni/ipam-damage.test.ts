// Issue 14 item 6: an ipam.db overwritten with garbage while two pods hold .2 and .3 never yields either address
// again: the plugin answers a CNI error naming the file (never moves it aside and starts empty), in-process and
// through the agent's CNI worker, which holds the database open.
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespaces, installPlugin, isRoot, linksOf, runPlugin, startWorker, tempDir } from "./helpers.ts";

const NODE = "fn-hc-db-node";
const PODS = ["fn-hc-db-pod0", "fn-hc-db-pod1", "fn-hc-db-pod2"];
const GARBAGE = "not a database: what a stray write left behind. ".repeat(200);

if (!isRoot) console.log("skipping CNI damaged-database kernel tests: they need root (network namespaces)");

describe.skipIf(!isRoot)("CNI: a damaged IPAM database never yields a live pod's address", { timeout: 60_000 }, () => {
  const dir = tempDir("fn-hc-db-");
  const workerSocket = join(dir.path, "worker.sock");
  let plugin = "";
  let worker: { stop(): void } | undefined;
  let cleanup = () => {};

  beforeAll(async () => {
    plugin = installPlugin(dir.path);
    cleanup = createNamespaces([NODE, ...PODS]);
    worker = await startWorker(plugin, workerSocket);
  });
  afterAll(() => {
    worker?.stop();
    cleanup();
    dir.remove();
  });

  for (const via of ["in-process", "worker"] as const) {
    it(`${via}: after the garbage, ADD answers a CNI error naming the file (or an address nobody holds), never .2 or .3`, async () => {
      const network = `fn-hc-${via}`;
      const dataDir = join(dir.path, "ipam");
      const conf = JSON.stringify({
        cniVersion: "1.0.0", name: network, type: "flatnet", podCidrs: ["10.79.1.0/24"], nodeNetns: NODE, dataDir, bridge: "fn-hc-br0",
        ...(via === "worker" ? { agentSocket: workerSocket } : {}),
      });
      const env = (command: string, i: number) => ({ CNI_COMMAND: command, CNI_CONTAINERID: `${via}-${i}`, CNI_NETNS: `/run/netns/${PODS[i]}`, CNI_IFNAME: "eth0", CNI_PATH: "/x" });
      const ipOf = (json: Record<string, unknown> | undefined) => (json?.ips as { address: string }[] | undefined)?.[0]?.address;
      const held = [await runPlugin(env("ADD", 0), conf, plugin), await runPlugin(env("ADD", 1), conf, plugin)];
      expect(held.map((r) => ipOf(r.json))).toEqual(["10.79.1.2/24", "10.79.1.3/24"]);

      const file = join(dataDir, network, "ipam.db");
      writeFileSync(file, GARBAGE);
      const next = await runPlugin(env("ADD", 2), conf, plugin);
      expect(["10.79.1.2/24", "10.79.1.3/24"]).not.toContain(ipOf(next.json));
      if (via === "in-process") {
        // No process holds it open: nothing masks the damage.
        expect(next.json).toMatchObject({ code: 5 });
        expect(String(next.json?.msg)).toContain(`IPAM database ${JSON.stringify(file)} is damaged`);
        expect(linksOf(PODS[2]!)).toEqual(["lo"]);
      }
      expect(readdirSync(join(dataDir, network)).filter((f) => f.includes("corrupt"))).toEqual([]);
      for (let i = 0; i < 3; i++) await runPlugin(env("DEL", i), conf, plugin);
    });
  }
});
