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

// The optional native front (src/cni/native/flatnet-client.c, docs/cni.md): dist/cni/flatnet-client, installed as
// <bin>/flatnet with this binary beside it as <bin>/flatnet-bun. Built when a C compiler is there; static, so it
// starts without the dynamic loader.
const client = join(dirname(out), "flatnet-client");
const source = join(agent, "src", "cni", "native", "flatnet-client.c");
const cc = process.env.CC ?? "cc";
const clientTmp = `${client}.build-${process.pid}`;
let built = false;
for (const extra of [["-static"], []]) {
  const compile = spawnSync(cc, ["-O2", "-s", "-Wall", "-Wextra", "-Werror", ...extra, "-o", clientTmp, source], { stdio: ["ignore", "inherit", "pipe"] });
  if (compile.status === 0) {
    built = true;
    break;
  }
  if (compile.error !== undefined) break; // no compiler at all
}
if (built) {
  renameSync(clientTmp, client);
  process.stdout.write(`build-cni: ${client}\n`);
} else {
  rmSync(clientTmp, { force: true });
  process.stdout.write(`build-cni: no C compiler (${cc}); the optional native client ${client} is not built\n`);
}
