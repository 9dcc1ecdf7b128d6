import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { LabError } from "./errors.ts";
import { run } from "./exec.ts";
import { flatnetCommand } from "./supervisor.ts";

// The image every container-runtime lab pod runs, made here with no registry: Debian's busybox-static, the dynamic
// loader and libraries the responder needs (copied from this machine), and an entry script. The probe responder
// itself is a `bun build --compile` binary bind-mounted read-only at RESPONDER_PATH: the image stays ~5 MB (imported
// into each node's storage in a blink) and always runs the tree's current responder without a rebuild.

export const POD_IMAGE = "localhost/flatnet-lab-pod:1";
export const RESPONDER_PATH = "/flatnet/probe-responder";
export const ENTRY_PATH = "/flatnet/entry.sh";
const BUSYBOX = "/bin/busybox";
const APPLETS = ["sh", "ip", "sed", "ping", "cat", "ls", "sleep", "wget", "nc"];

// The responder binds the addresses CNI gave eth0, which are known only once the container runs.
const ENTRY_SCRIPT = `#!/bin/sh
for ip in $(ip -o addr show dev eth0 scope global | sed -n 's#.* inet6* \\([^/]*\\)/.*#\\1#p'); do set -- "$@" --pod-ip "$ip"; done
exec ${RESPONDER_PATH} "$@"
`;

export interface PodImage {
  /** The image's root filesystem as a tar (`podman import`, or an OCI archive made from it). */
  rootfsTar: string;
  /** The self-contained responder binary, bind-mounted at RESPONDER_PATH. */
  responder: string;
}

/** Builds (once per directory) the responder binary and the image's root filesystem tar under `dir`. */
export async function buildPodImage(dir: string): Promise<PodImage> {
  const image: PodImage = { rootfsTar: join(dir, "rootfs.tar"), responder: join(dir, "probe-responder") };
  if (existsSync(image.rootfsTar) && existsSync(image.responder)) return image;
  if (!existsSync(BUSYBOX)) throw new LabError("ERR_LAB_RUNTIME", `${BUSYBOX} is missing; install Debian's busybox-static (apt-get install busybox-static)`);
  await mkdir(dir, { recursive: true });
  await compileResponder(image.responder);
  const rootfs = join(dir, "rootfs");
  await rm(rootfs, { recursive: true, force: true });
  for (const sub of ["bin", "flatnet", "tmp", "etc", "proc", "sys", "dev"]) await mkdir(join(rootfs, sub), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, "bin", "busybox"));
  await Promise.all(APPLETS.map((applet) => symlink("busybox", join(rootfs, "bin", applet))));
  for (const library of await sharedLibraries([BUSYBOX, image.responder])) {
    await mkdir(join(rootfs, dirname(library)), { recursive: true });
    await copyFile(library, join(rootfs, library)); // follows symlinks: the loader's path holds the real file
  }
  await writeFile(join(rootfs, ENTRY_PATH), ENTRY_SCRIPT);
  await chmod(join(rootfs, ENTRY_PATH), 0o755);
  await run("tar", ["-C", rootfs, "-cf", `${image.rootfsTar}.tmp`, "."]);
  await rename(`${image.rootfsTar}.tmp`, image.rootfsTar);
  return image;
}

/** Absolute paths `ldd` lists for the binaries (none for a static one). */
async function sharedLibraries(binaries: readonly string[]): Promise<string[]> {
  const paths = new Set<string>();
  for (const binary of binaries) {
    const { stdout } = await run("ldd", [binary], { allowFailure: true });
    for (const line of stdout.split("\n")) {
      const path = /(\/\S+)/.exec(line)?.[1];
      if (path !== undefined) paths.add(path);
    }
  }
  return [...paths];
}

/** `bun build --compile` of the light responder bundle (dist/probe-responder.js) next to the running flatnet. */
async function compileResponder(out: string): Promise<void> {
  const main = flatnetCommand()[1] ?? "";
  const bundle = join(dirname(main), "probe-responder.js");
  if (!existsSync(bundle)) throw new LabError("ERR_LAB_RUNTIME", `the responder bundle ${bundle} is not built; run "npm run build"`);
  const repoBun = join(dirname(main), "..", "..", "..", "node_modules", ".bin", "bun");
  const bun = existsSync(repoBun) ? repoBun : "bun";
  const args = ["build", "--compile", "--minify", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", "--target=bun-linux-x64", bundle, "--outfile", out];
  await run(bun, args, { timeoutMs: 120_000 });
}
