import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireLabState } from "../../apps/agent/src/probe/lab-source.ts";
import { inNetns, isRoot } from "../probe/topology.ts";

// `flatnet trace --trace` on a host-gw lab (fn-tx-n-*): an nft drop rule in node1's forward chain for pod-node2-1;
// the live trace names that table, chain and handle, and node1's ruleset is what it was before.

const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const main = join(repo, "apps/agent/dist/main.js");
const skip = !isRoot() || !existsSync(main);
if (skip) console.log(`trace --trace CLI test skipped: ${!isRoot() ? "needs root" : "needs the built agent"}`);

const flatnet = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe.skipIf(skip)("flatnet trace --trace", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "fn-tx-n-"));
  const node1 = "fn-tx-n-node1";
  beforeAll(() => {
    const up = flatnet(["lab", "up", "--prefix", "fn-tx-n-", "--state-dir", stateDir, "--nodes", "2", "--pods-per-node", "1"]);
    expect(up.status, up.stderr).toBe(0);
  }, 180_000);
  afterAll(() => {
    flatnet(["lab", "down", "--state-dir", stateDir]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("names the nft table, chain and rule handle that drops the probe packet, and removes its own table", async () => {
    const pod2 = (await requireLabState(stateDir)).pods.find((p) => p.name === "pod-node2-1")!.ips[0]!;
    inNetns(node1, "nft", ["-f", "-"], `table ip fn_tx_fault {\n  chain forward { type filter hook forward priority 0; ip daddr ${pod2} udp dport 7471 drop; }\n}\n`);
    const before = inNetns(node1, "nft", ["-a", "list", "ruleset"]);
    const handle = Number(/drop # handle (\d+)/.exec(before)?.[1]);
    const r = flatnet(["trace", "pod-node1-1", "pod-node2-1", "--family", "IPv4", "--trace", "--state-dir", stateDir, "--no-color"]);
    console.log(r.stdout);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toContain(`nftrace node1: dropped by ip fn_tx_fault forward rule handle ${handle} (\`ip daddr ${pod2} udp dport 7471 drop\`); fix: nft delete rule ip fn_tx_fault forward handle ${handle}`);
    expect(inNetns(node1, "nft", ["-a", "list", "ruleset"])).toBe(before);
  }, 60_000);
});
