// Builds the CNI plugin binary dist/cni/flatnet with `bun build --compile`: a self-contained executable that starts in
// ~5 ms (Node takes ~65 ms), which is what a process-per-call plugin needs. --bytecode skips parsing at start-up.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const agent = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = join(agent, "..", "..");
const out = process.argv[2] ?? join(agent, "dist", "cni", "flatnet");
const bun = [join(root, "node_modules", ".bin", "bun"), join(agent, "node_modules", ".bin", "bun")].find((p) => existsSync(p)) ?? "bun";
mkdirSync(dirname(out), { recursive: true });
// No .env / bunfig.toml autoload: a plugin must not take settings from whatever directory the runtime runs it in.
// Built beside the target, then renamed over it: a plugin or an agent's CNI worker running the old binary keeps its
// inode, and nobody ever sees a half-written file.
const tmp = `${out}.build-${process.pid}`;
const args = ["build", "--compile", "--minify", "--bytecode", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", "--target=bun-linux-x64", join(agent, "src", "cni", "bin.ts"), "--outfile", tmp];
const run = spawnSync(bun, args, { cwd: agent, stdio: ["ignore", "pipe", "inherit"] });
if (run.status !== 0) {
  rmSync(tmp, { force: true });
  process.stderr.write(`build-cni: ${bun} ${args.join(" ")} exited with ${run.status}\n`);
  process.exit(1);
}
renameSync(tmp, out);
process.stdout.write(`build-cni: ${out}\n`);
