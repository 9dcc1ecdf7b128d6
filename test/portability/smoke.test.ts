import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const smoke = fileURLToPath(new URL("./smoke.mjs", import.meta.url));
const bin = (name: string) => `${repo}node_modules/.bin/${name}`;

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { cwd: repo, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 240_000 });
  return { status: result.status, stdout: result.stdout ?? "", stderr: `${result.stderr ?? ""}${result.error ? String(result.error) : ""}` };
}

const expected = {
  ip: "2001:db8::1",
  mapped: "10.1.2.3",
  split: ["10.0.0.0/24", "10.0.1.0/24"],
  podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"],
  podIps: ["10.244.0.2/24 via 10.244.0.1", "fd00:10:244::2/64 via fd00:10:244::1"],
  badCidr: 'CIDR "10.0.0.0/33" has prefix length 33; IPv4 allows 0-32',
  thrown: { name: "FlatnetError", code: "ERR_INVALID_IP", isFlatnetError: true },
};

describe("the built @flatnet/core imports and works on every runtime", () => {
  beforeAll(() => {
    const build = run(bin("turbo"), ["run", "build", "--filter=@flatnet/core", "--output-logs=errors-only"]);
    expect(build.status, `turbo build failed:\n${build.stdout}\n${build.stderr}`).toBe(0);
    expect(existsSync(`${repo}packages/core/dist/index.js`)).toBe(true);
  }, 300_000);

  it.each([
    { runtime: "node", command: process.execPath, args: [smoke] },
    { runtime: "bun", command: bin("bun"), args: [smoke] },
    { runtime: "deno", command: bin("deno"), args: ["run", "--quiet", "--allow-env", "--allow-read", smoke] },
  ])("$runtime", ({ command, args }) => {
    const result = run(command, args);
    expect(result.status, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}");
    expect(summary).toMatchObject(expected);
    expect(summary.exports).toBeGreaterThan(50);
  }, 240_000);
});
