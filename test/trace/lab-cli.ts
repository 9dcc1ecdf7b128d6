import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

// The built `flatnet` binary, for the tracer's tests on a `flatnet lab`.

const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const main = join(repo, "apps/agent/dist/main.js");

/** The agent, its CNI plugin and the probe responder are built (the lab needs all three). */
export const built = existsSync(main) && existsSync(join(repo, "apps/agent/dist/cni/flatnet")) && existsSync(join(repo, "apps/agent/dist/probe-responder.js"));

export function flatnet(args: string[]): { status: number | null; stdout: string; stderr: string; out: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}${r.stderr}` };
}

/** `flatnet lab up ARGS`, again up to twice: a lab rebuilds from scratch, and its own flakiness is not under test. */
export function labUp(args: string[]): void {
  let up = flatnet(["lab", "up", ...args]);
  for (let attempt = 2; up.status !== 0 && attempt <= 3; attempt++) up = flatnet(["lab", "up", ...args]);
  expect(up.status, up.out).toBe(0);
}
