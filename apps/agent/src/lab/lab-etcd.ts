import { execInNetns, ipBatch, KernelCommandError } from "../linux/index.ts";
import { waitFor } from "../wait.ts";

// etcd for `flatnet lab up --datastore etcd`. The node namespaces cannot reach the root namespace's loopback, so
// etcd runs inside the lab's underlay namespace on an address of the first segment's bridge (netlab etcd.sh part B);
// nodes of a second segment reach it through the lab's router, and the underlay gets the return route.

/** The address etcd listens on: on br0 (172.31.0.0/24, where node addresses start at .11 and the router is .254). */
export const LAB_ETCD_ADDRESS = "172.31.0.1";
export const LAB_ETCD_CLIENT_PORT = 2379;
export const LAB_ETCD_PEER_PORT = 2380;
export const LAB_ETCD_ENDPOINT = `http://${LAB_ETCD_ADDRESS}:${LAB_ETCD_CLIENT_PORT}`;
export const LAB_ETCD_PREFIX = "/flatnet";

/** Puts the etcd address on br0 of the underlay namespace, with return routes to other segments via their router. */
export async function prepareLabEtcdNetwork(underlayNs: string, otherSegments: { subnet: string; via: string }[]): Promise<void> {
  await ipBatch(underlayNs, [`addr replace ${LAB_ETCD_ADDRESS}/24 dev br0`, ...otherSegments.map(({ subnet, via }) => `route replace ${subnet} via ${via} dev br0`)]);
}

/** The etcd command line (run inside the underlay namespace by the lab's process supervisor). */
export function labEtcdArgs(dataDir: string): string[] {
  const client = LAB_ETCD_ENDPOINT;
  const peer = `http://${LAB_ETCD_ADDRESS}:${LAB_ETCD_PEER_PORT}`;
  return [
    "/usr/bin/etcd",
    "--name", "flatnet-lab",
    "--data-dir", dataDir,
    "--listen-client-urls", client, "--advertise-client-urls", client,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `flatnet-lab=${peer}`, "--initial-cluster-state", "new",
    "--log-level", "warn", "--logger", "zap",
  ];
}

/** Polls `etcdctl endpoint health` from inside the namespace until etcd answers or the timeout passes. */
export async function waitLabEtcdHealthy(underlayNs: string, timeoutMs = 20_000): Promise<boolean> {
  const health = [`--endpoints=${LAB_ETCD_ENDPOINT}`, "--command-timeout=1s", "endpoint", "health"];
  return waitFor(async () => (await execInNetns({ name: underlayNs }, "etcdctl", health)).exitCode === 0, { timeoutMs, intervalMs: 100, maxIntervalMs: 100 });
}

/**
 * Removes a node from the lab's etcd as EtcdDatastore.remove does (record, liveness key, its CIDR keys), from inside
 * the underlay namespace, since the lab's own process in the root namespace cannot reach etcd.
 */
export async function removeNodeFromLabEtcd(underlayNs: string, name: string): Promise<void> {
  const etcdctl = async (...args: string[]) => {
    const result = await execInNetns({ name: underlayNs }, "etcdctl", [`--endpoints=${LAB_ETCD_ENDPOINT}`, ...args]);
    if (result.exitCode !== 0) throw new KernelCommandError(["etcdctl", ...args], result.exitCode, result.stderr);
    return result;
  };
  const { stdout } = await etcdctl("get", "--prefix", `${LAB_ETCD_PREFIX}/cidrs/`);
  const lines = stdout.split("\n").filter(Boolean);
  const owned: string[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) if (lines[i + 1] === name) owned.push(lines[i]!);
  for (const key of [`${LAB_ETCD_PREFIX}/nodes/${name}`, `${LAB_ETCD_PREFIX}/alive/${name}`, ...owned]) await etcdctl("del", key);
}
