import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireLabState } from "../../apps/agent/src/lab/probe-source.ts";
import { inNetns, isRoot } from "../probe/topology.ts";
import { built, flatnet, labUp } from "./lab-cli.ts";

// `flatnet trace --trace` on a host-gw lab (fn-tx-n-*): an nft drop rule in node1's forward chain for pod-node2-1;
// the live trace names that table, chain and handle, and node1's ruleset is what it was before.

const skip = !isRoot() || !built;
if (skip) console.log(`trace --trace CLI test skipped: ${!isRoot() ? "needs root" : "needs the built agent"}`);

describe.skipIf(skip)("flatnet trace --trace", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "fn-tx-n-"));
  const node1 = "fn-tx-n-node1";
  beforeAll(() => {
    labUp(["--prefix", "fn-tx-n-", "--state-dir", stateDir, "--nodes", "2", "--pods-per-node", "1"]);
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
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toContain(`nftrace node1: dropped by ip fn_tx_fault forward rule handle ${handle} (\`ip daddr ${pod2} udp dport 7471 drop\`); fix: nft delete rule ip fn_tx_fault forward handle ${handle}`);
    expect(inNetns(node1, "nft", ["-a", "list", "ruleset"])).toBe(before);

    // The same under each failed pair of an explained check.
    // The node's agent may rewrite its own table meanwhile (same rules, a new handle and place): compare the tables.
    const tables = (): string[] => inNetns(node1, "nft", ["list", "ruleset"]).split(/(?=^table )/m).map((t) => t.trim()).sort();
    const beforeTables = tables();
    const c = flatnet(["check", "--explain", "--trace", "--state-dir", stateDir, "--no-include-nodes", "--family", "IPv4", "--no-color"]);
    expect(c.status, c.stderr).toBe(1);
    expect(c.stdout).toContain(`pod-node1-1>pod-node2-1/IPv4:\n  nftrace node1: dropped by ip fn_tx_fault forward rule handle ${handle}`);
    expect(tables()).toEqual(beforeTables);
  }, 90_000);
});
