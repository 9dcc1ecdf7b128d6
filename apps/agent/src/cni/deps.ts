import { existsSync, readFileSync } from "node:fs";
import { configurePodLink, createPodLink, detachLink, detachPod, ensureBridge, hostVethName, inspectPod, listHostVeths } from "../linux/pod.ts";
import { IpamStore } from "../ipam-store/store.ts";
import type { PluginDeps } from "./invocation.ts";

// FLATNET_CNI_CRASH_AT names one of these phase ends; the crash tests (test/cni/crash.test.ts) SIGKILL the plugin there.
const CRASH_POINTS: Readonly<Record<string, string>> = {
  allocated: "after-alloc",
  attached: "after-attach",
  committed: "after-commit",
  detached: "del-after-detach",
  released: "del-after-release",
  "gc released": "gc-after-release",
};

/** The production dependencies: linux/pod.ts for the kernel, the filesystem, the SQLite IPAM store. */
export function realDeps(env: Record<string, string | undefined>): PluginDeps {
  const tracing = Boolean(env.FLATNET_CNI_TRACE);
  const crashAt = env.FLATNET_CNI_CRASH_AT;
  return {
    pods: { createLink: createPodLink, configureLink: configurePodLink, detach: detachPod, inspect: inspectPod, ensureBridge, hostVethName, listHostVeths, detachLink },
    readFile: (path) => {
      try {
        return readFileSync(path, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    },
    exists: (path) => existsSync(path),
    // No fsync: every commit still survives a SIGKILL; see OpenOptions.synchronous and docs/cni.md.
    openStore: (path) => IpamStore.open(path, { synchronous: "OFF" }),
    trace: (label) => {
      if (tracing) process.stderr.write(`flatnet-cni: ${label} at ${performance.now().toFixed(2)} ms\n`);
      // A SIGKILL has no handler and no cleanup, like a real kill.
      if (crashAt !== undefined && CRASH_POINTS[label] === crashAt) process.kill(process.pid, "SIGKILL");
    },
  };
}
