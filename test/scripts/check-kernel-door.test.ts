// The guard that keeps the kernel behind apps/agent/src/linux/: run on a fixture tree it builds, and on the repo.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const script = join(repo, "scripts", "check-kernel-door.mjs");
let root: string | undefined;

function tree(files: Record<string, string>): string {
  root = mkdtempSync(join(tmpdir(), "fn-k1-door-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function guard(dir: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script, dir], { encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

afterEach(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

describe("scripts/check-kernel-door.mjs", () => {
  it("passes the repository as it is", () => {
    const result = guard(repo);
    expect([result.status, result.stderr]).toEqual([0, ""]);
  });

  it("fails on each way past the door, naming file:line, and exempts linux/, tests and comments", () => {
    const dir = tree({
      "apps/agent/src/linux/ok.ts": 'spawn("ip", ["link"]);\nimport { x } from "./netlink.ts";\n',
      "apps/agent/src/cni/ok.ts": 'import { createNetlinkPodOps } from "../linux/netlink.ts";\n// runCommand("ip", ["-j"]) in a comment\n',
      "apps/agent/src/lab/a.test.ts": 'spawn("ip", ["netns", "add", "x"]);\n',
      "apps/agent/src/lab/bad.ts": [
        'import { spawn } from "node:child_process";',
        'spawn("ip", ["netns", "exec", ns, "sh"]);',
        'await run("nft", ["-f", "-"]);',
        'await execInNetns({ name: ns }, "sysctl", ["-w", "a=1"]);',
        'await runBatch("bridge", ns, lines);',
        'execFileSync("iptables-save", []);',
        'const AF_NETLINK = 16;',
        'import { open } from "./netlink.ts";',
      ].join("\n"),
      "apps/vscode/src/x.ts": 'Bun.spawn(["conntrack", "-L"]);\n',
    });
    const result = guard(dir);
    expect(result.status).toBe(1);
    const listed = result.stderr.split("\n").filter((line) => /^apps\//.test(line)).map((line) => line.split(": ")[0]);
    expect(listed).toEqual([
      "apps/agent/src/lab/bad.ts:2",
      "apps/agent/src/lab/bad.ts:3",
      "apps/agent/src/lab/bad.ts:4",
      "apps/agent/src/lab/bad.ts:5",
      "apps/agent/src/lab/bad.ts:6",
      "apps/agent/src/lab/bad.ts:7",
      "apps/agent/src/lab/bad.ts:8",
      "apps/vscode/src/x.ts:1",
    ]);
  });
});
