import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enableForwarding } from "./sysctl.ts";

// The DaemonSet's agent is an unprivileged container: /proc/sys is read-only there, so `sysctl -w` fails even for a
// value that is already right. A stand-in `sysctl` first on PATH refuses every write as that kernel does and answers
// reads from the real one, so the test needs no read-only mount.
const isRoot = process.getuid?.() === 0;
const NS = "fn-sy-node";

describe.skipIf(!isRoot)("setSysctls where /proc/sys is read-only", () => {
  let dir: string;
  let path: string | undefined;
  beforeAll(() => {
    spawnSync("ip", ["netns", "del", NS], { stdio: "ignore" });
    execFileSync("ip", ["netns", "add", NS]);
    dir = mkdtempSync(join(tmpdir(), "fn-sy-"));
    const real = execFileSync("sh", ["-c", "command -v sysctl"], { encoding: "utf8" }).trim();
    writeFileSync(
      join(dir, "sysctl"),
      `#!/bin/sh\necho "$*" >> "${dir}/calls"\ncase " $* " in *" -w "*) for a; do case "$a" in *=*) echo "sysctl: setting key \\"\${a%%=*}\\": Read-only file system" >&2;; esac; done; exit 255;; esac\nexec ${real} "$@"\n`,
    );
    chmodSync(join(dir, "sysctl"), 0o755);
    path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
  });
  afterAll(() => {
    process.env.PATH = path;
    spawnSync("ip", ["netns", "del", NS], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  });

  it("a forwarding value that is already 1 is no error: the agent gets Ready", async () => {
    execFileSync("ip", ["netns", "exec", NS, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"]);
    await expect(enableForwarding(NS)).resolves.toBeUndefined();
    expect(readFileSync(join(dir, "calls"), "utf8")).toContain("-w");
  });

  it("a value that is wrong is an error naming the key, its value, the one needed and where to set it", async () => {
    execFileSync("ip", ["netns", "exec", NS, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"]);
    await expect(enableForwarding(NS)).rejects.toThrow(/net\/ipv4\/ip_forward is "0", flatnet needs "1".*set it on the node/);
  });
});
