import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeReportSchema, type PairResult, type ProbeReport } from "@flatnet/core";
import { inNetns, ipBatch, isRoot } from "./topology.ts";

// Node endpoints on a real `flatnet lab --backend vxlan` (prefix fn-tn-l-): every agent runs the node's probe
// responder, and `flatnet check` (the CLI, default --include-nodes on the lab) probes node -> remote pod and
// pod -> remote node through it. Over VXLAN a node's packets leave from its VTEP address (its pod CIDR's network
// address), which the expected-source rule accepts; a pod's packets must reach a node unmasqueraded.

const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const main = join(repo, "apps/agent/dist/main.js");
const built = existsSync(main) && existsSync(join(repo, "apps/agent/dist/cni/flatnet")) && existsSync(join(repo, "apps/agent/dist/probe-responder.js"));
const PREFIX = "fn-tn-l-";

const skip = !isRoot() || !built;
if (skip) console.log(`lab node-endpoint test skipped: ${!isRoot() ? "needs root" : "needs the built agent (npm run build -w @flatnet/agent)"}`);

function flatnet(args: string[]): { status: number | null; stdout: string; out: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(skip)("flatnet check node endpoints on a vxlan lab with real agents", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "fn-tn-l-"));
  const node1 = `${PREFIX}node1`;

  beforeAll(() => {
    const args = ["lab", "up", "--prefix", PREFIX, "--state-dir", stateDir, "--nodes", "2", "--pods-per-node", "1", "--backend", "vxlan"];
    let up = flatnet(args);
    for (let attempt = 2; up.status !== 0 && attempt <= 3; attempt++) up = flatnet(args);
    expect(up.status, up.out).toBe(0);
  }, 240_000);

  afterAll(() => {
    inNetns(node1, "nft", ["delete", "table", "ip", "fn-tn-fault"], undefined, true);
    flatnet(["lab", "down", "--state-dir", stateDir]);
    rmSync(stateDir, { recursive: true, force: true });
  }, 120_000);

  function check(extra: string[] = []): { status: number | null; report: ProbeReport } {
    const r = flatnet(["check", "--json", "--retries", "1", "--state-dir", stateDir, ...extra]);
    const parsed = probeReportSchema.safeParse(JSON.parse(r.stdout));
    expect(parsed.success, r.out.slice(0, 2000)).toBe(true);
    return { status: r.status, report: JSON.parse(r.stdout) as ProbeReport };
  }
  const byId = (report: ProbeReport): Map<string, PairResult> => new Map(report.results.map((r) => [r.pair.id, r]));

  it.each([["direct"], ["agents"]])("healthy (--via %s): node pairs ok; node -> pod from the VTEP address, pod -> node from the pod IP", (via) => {
    const { status, report } = check(["--via", via]);
    expect(status).toBe(0);
    expect(report.summary.line).toBe("0/6 pairs failed (0 NAT violations), 0 excluded");
    const results = byId(report);
    const n2p = results.get("node:node1>pod-node2-1/IPv4")!;
    expect(n2p.verdict).toBe("ok");
    const vtep = n2p.nat.expectedSrcs![2]!; // node IP, bridge gateway, VTEP (the pod CIDR's network address)
    expect(vtep).toMatch(/^10\.244\.\d+\.0$/);
    expect(n2p.nat).toMatchObject({ verdict: "nat-free", observedSrc: vtep });
    const p2n = results.get("pod-node2-1>node:node1/IPv4")!;
    expect(p2n.verdict).toBe("ok");
    expect(p2n.nat).toEqual({ verdict: "nat-free", observedSrc: p2n.pair.src.ip, expectedSrc: p2n.pair.src.ip });
    expect(p2n.pair.dst).toMatchObject({ kind: "node", pod: "node:node1" });
  }, 120_000);

  it("--no-include-nodes probes the pods only", () => {
    const { status, report } = check(["--no-include-nodes"]);
    expect(status).toBe(0);
    expect(report.results.map((r) => r.pair.id).sort()).toEqual(["pod-node1-1>pod-node2-1/IPv4", "pod-node2-1>pod-node1-1/IPv4"]);
  }, 120_000);

  it("SNAT of node1's own traffic: exactly node1 -> pod fails, snat-other, exit 1, node1's rule named", () => {
    const healthy = byId(check().report).get("node:node1>pod-node2-1/IPv4")!;
    const vtep = healthy.nat.observedSrc!;
    ipBatch(node1, ["addr add 172.31.0.111/32 dev eth0"]);
    inNetns(node1, "nft", ["-f", "-"], [
      "table ip fn-tn-fault {",
      `  chain post { type nat hook postrouting priority 100; ip saddr ${vtep} ip daddr 10.244.0.0/16 snat to 172.31.0.111; }`,
      "}",
    ].join("\n"));
    try {
      const { status, report } = check();
      expect(status).toBe(1);
      const bad = report.results.filter((r) => r.verdict !== "ok");
      expect(bad.map((r) => r.pair.id)).toEqual(["node:node1>pod-node2-1/IPv4"]);
      const r = bad[0]!;
      expect(r.verdict).toBe("failed");
      expect(r.problems).toEqual(["nat-violation"]);
      expect(r.nat).toMatchObject({ verdict: "snat-other", observedSrc: "172.31.0.111" });
      expect(r.diagnosis.map((d) => [d.code, d.node, d.message])).toEqual([
        ["snat-rule", "node1", `node1 rewrites the source of ${vtep} -> ${r.pair.dst.ip}: snat to 172.31.0.111 (nft ip fn-tn-fault post #2)`],
      ]);
      expect(report.summary.line).toBe("1/6 pairs failed (1 NAT violation), 0 excluded");
    } finally {
      inNetns(node1, "nft", ["delete", "table", "ip", "fn-tn-fault"], undefined, true);
      ipBatch(node1, ["addr del 172.31.0.111/32 dev eth0"]);
    }
  }, 120_000);

  it("node1's agent killed (its responder with it): node1's own pairs inconclusive, pairs to it failed, pod pairs ok", () => {
    expect(flatnet(["lab", "kill-agent", "node1", "--state-dir", stateDir]).status).toBe(0);
    const { status, report } = check();
    expect(status).toBe(1);
    const verdicts = Object.fromEntries(report.results.map((r) => [r.pair.id, r.verdict]));
    expect(verdicts).toEqual({
      "pod-node1-1>pod-node2-1/IPv4": "ok",
      "pod-node2-1>pod-node1-1/IPv4": "ok",
      "node:node1>pod-node2-1/IPv4": "inconclusive",
      "node:node2>pod-node1-1/IPv4": "ok",
      "pod-node1-1>node:node2/IPv4": "ok",
      "pod-node2-1>node:node1/IPv4": "failed",
    });
  }, 120_000);
});
