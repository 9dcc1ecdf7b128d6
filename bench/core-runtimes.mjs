// The parent side of the core benchmarks: make sure packages/core/dist is current, then name the three runtimes that
// run the same bench module as a worker against it (Node, Bun, Deno side by side).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));

const newest = (dir) =>
  readdirSync(dir, { withFileTypes: true }).reduce((max, entry) => {
    const path = join(dir, entry.name);
    return Math.max(max, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }, 0);

/** Builds @flatnet/core when its dist is missing or older than its sources; returns the runtimes to run `benchUrl` on. */
export function coreRuntimes(benchUrl) {
  const dist = join(root, "packages/core/dist/index.js");
  if (!existsSync(dist) || statSync(dist).mtimeMs < newest(join(root, "packages/core/src"))) {
    process.stdout.write("building @flatnet/core (dist is missing or older than src)...\n");
    const build = spawnSync("npx", ["turbo", "run", "build", "--filter=@flatnet/core", "--output-logs=errors-only"], { cwd: root, stdio: "inherit" });
    if (build.status !== 0) process.exit(1);
  }
  const self = fileURLToPath(benchUrl);
  const bin = (name) => join(root, "node_modules/.bin", name);
  return [
    { name: "node", command: process.execPath, args: [self, "--worker"] },
    { name: "bun", command: bin("bun"), args: [self, "--worker"] },
    { name: "deno", command: bin("deno"), args: ["run", "--allow-read", "--allow-env", self, "--worker"] },
  ];
}
