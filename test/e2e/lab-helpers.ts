import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../apps/agent/src/lab/exec.ts";

export const isRoot = process.getuid?.() === 0;

export function skipReason(what: string): void {
  if (!isRoot) console.warn(`skipping ${what}: it creates network namespaces and needs root`);
}

export const tempStateDir = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), `flatnet-${prefix}`));

export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev: string;
  flags?: string[];
}

/** flatnet's routes (proto 77) in a namespace, both families. */
export async function flatnetRoutes(netns: string): Promise<KernelRoute[]> {
  const read = async (family: string): Promise<KernelRoute[]> => {
    const { stdout } = await run("ip", ["-n", netns, "-j", family, "route", "show", "proto", "77"]);
    return stdout.trim() === "" ? [] : (JSON.parse(stdout) as KernelRoute[]);
  };
  return [...(await read("-4")), ...(await read("-6"))];
}

export async function vxlanNeighbours(netns: string): Promise<{ dst: string; lladdr: string }[]> {
  const { stdout, code } = await run("ip", ["-n", netns, "-j", "neigh", "show", "dev", "flatnet.1"], { allowFailure: true });
  return code !== 0 || stdout.trim() === "" ? [] : (JSON.parse(stdout) as { dst: string; lladdr: string }[]);
}

export async function vxlanFdb(netns: string): Promise<{ mac: string; dst?: string }[]> {
  const { stdout, code } = await run("bridge", ["-n", netns, "-j", "fdb", "show", "dev", "flatnet.1"], { allowFailure: true });
  const rows = code !== 0 || stdout.trim() === "" ? [] : (JSON.parse(stdout) as { mac: string; dst?: string }[]);
  return rows.filter((row) => row.dst !== undefined);
}

export async function deleteRoute(netns: string, dst: string): Promise<void> {
  await run("ip", ["-n", netns, "route", "del", dst, "proto", "77"]);
}

/** Compact route description for whole-value expectations: "10.244.1.0/24 via 172.31.0.12 dev eth0". */
export const describeRoute = (route: KernelRoute): string =>
  `${route.dst} via ${route.gateway ?? "-"} dev ${route.dev}${route.flags?.includes("onlink") ? " onlink" : ""}`;
