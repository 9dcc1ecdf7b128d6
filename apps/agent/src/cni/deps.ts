import { existsSync, readFileSync } from "node:fs";
import { KernelCommandError, parseJsonStream, runBatch, runCommand } from "../linux/exec.ts";
import { configurePodLink, createPodLink, detachPod, ensureBridge, HOST_VETH_PREFIX, hostVethName, inspectPod } from "../linux/pod.ts";
import { IpamStore } from "../ipam-store/store.ts";
import type { CrashPoint, PluginDeps } from "./plugin.ts";

/** The production dependencies: linux/pod.ts for the kernel, the filesystem, the SQLite IPAM store. */
export function realDeps(env: Record<string, string | undefined>): PluginDeps {
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
    trace: env.FLATNET_CNI_TRACE ? (label) => process.stderr.write(`flatnet-cni: ${label} at ${performance.now().toFixed(2)} ms\n`) : () => {},
    // Test-only: SIGKILL ourselves at a named point to prove crash safety (no handler, no cleanup, like a real kill).
    crashPoint: (point: CrashPoint) => {
      if (crashAt === point) process.kill(process.pid, "SIGKILL");
    },
  };
}

async function listHostVeths(netns: string, bridge: string): Promise<string[]> {
  const result = await runBatch("ip", netns, [`link show master ${bridge} type veth`], { json: true });
  if (result.exitCode !== 0) {
    if (/Cannot open network namespace|does not exist|Cannot find device/.test(result.stderr)) return [];
    throw new KernelCommandError(["ip", "-n", netns, "link", "show", "type", "veth"], result.exitCode, result.stderr, result.failures);
  }
  const links = (parseJsonStream(result.stdout)[0] as { ifname?: string }[] | undefined) ?? [];
  return links.flatMap((l) => (l.ifname?.startsWith(HOST_VETH_PREFIX) ? [l.ifname] : []));
}

async function detachLink(netns: string, name: string): Promise<void> {
  if (!name.startsWith(HOST_VETH_PREFIX)) throw new Error(`invariant: GC deletes only flatnet host veths, not ${JSON.stringify(name)}`);
  const result = await runCommand("ip", ["-n", netns, "link", "del", name]);
  if (result.exitCode !== 0 && !/Cannot find device|does not exist|Cannot open network namespace/.test(result.stderr)) {
    throw new KernelCommandError(["ip", "-n", netns, "link", "del", name], result.exitCode, result.stderr);
  }
}
