// The guard that keeps the kernel behind apps/agent/src/linux/: run on a fixture tree it builds, and on the repo.
import { describe, expect, it } from "vitest";
import { guardScript, repo } from "./guard-fixture.ts";

const { tree, guard } = guardScript("check-kernel-door.mjs");

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
