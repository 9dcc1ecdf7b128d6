import { existsSync, readFileSync } from "node:fs";
import { attachPod, detachPod, ensureBridge, hostVethName, inspectPod } from "../linux/pod.ts";
import { IpamStore } from "../ipam-store/store.ts";
import type { CrashPoint, PluginDeps } from "./plugin.ts";

/** The production dependencies: linux/pod.ts for the kernel, the filesystem, the SQLite IPAM store. */
export function realDeps(env: Record<string, string | undefined>): PluginDeps {
  const crashAt = env.FLATNET_CNI_CRASH_AT;
  return {
    pods: { attach: attachPod, detach: detachPod, inspect: inspectPod, ensureBridge, hostVethName },
    readFile: (path) => {
      try {
        return readFileSync(path, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    },
    exists: (path) => existsSync(path),
    openStore: (path) => IpamStore.open(path),
    // Test-only: SIGKILL ourselves at a named point to prove crash safety (no handler, no cleanup, like a real kill).
    crashPoint: (point: CrashPoint) => {
      if (crashAt === point) process.kill(process.pid, "SIGKILL");
    },
  };
}
