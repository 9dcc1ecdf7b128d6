import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_PROBE_PORT } from "@flatnet/core";
import { IpamStore } from "../../apps/agent/src/ipam-store/store.ts";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { nodeCniRoot } from "../../apps/agent/src/lab/names.ts";

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

/** The flatnet pod veths (`fnv...`) on a node's side. */
export async function podVeths(netns: string): Promise<string[]> {
  const { stdout } = await run("ip", ["-n", netns, "-j", "link", "show", "type", "veth"]);
  return (JSON.parse(stdout) as { ifname: string }[]).map((link) => link.ifname).filter((name) => name.startsWith("fnv"));
}

/** The pod IPs a lab node's CNI IPAM holds now, sorted. */
export function reservedPodIps(stateDir: string, node: string): string[] {
  const store = IpamStore.open(join(nodeCniRoot(stateDir, node), "ipam", "flatnet", "ipam.db"));
  try {
    return store.list().map((allocation) => allocation.ip).sort();
  } finally {
    store.close();
  }
}

/** GET /v1/identity of the probe responder at `ip`, sent from inside namespace `fromNetns`. */
export async function responderIdentity(fromNetns: string, ip: string): Promise<Record<string, unknown>> {
  const script = `fetch("http://${ip}:${DEFAULT_PROBE_PORT}/v1/identity").then((r) => r.json()).then((j) => console.log(JSON.stringify(j)))`;
  return JSON.parse((await run("ip", ["netns", "exec", fromNetns, process.execPath, "-e", script])).stdout) as Record<string, unknown>;
}
