import { ClusterIpam, cidrContains, safeParseCidr } from "@flatnet/core";
import { DatastoreError, type NetworkConfig } from "./datastore.ts";

/**
 * The pod CIDRs the core's cluster IPAM gives `node` when every CIDR in `taken` (CIDR -> owner) is occupied:
 * one per cluster CIDR family, dual-stack atomically. Stateless on purpose: the datastore's compare-and-swap
 * (etcd transaction, Node resourceVersion) decides who really gets it; a loser calls again with fresh state.
 */
export function chooseNodeCidrs(config: NetworkConfig, node: string, taken: Iterable<[cidr: string, owner: string]>): string[] {
  const created = ClusterIpam.create(config);
  if (!created.success) throw new DatastoreError(created.error.code, created.error.message, { cause: created.error });
  const ipam = created.data;
  const byOwner = new Map<string, string[]>();
  for (const [cidr, owner] of taken) byOwner.set(owner, [...(byOwner.get(owner) ?? []), cidr]);
  for (const [owner, cidrs] of byOwner) {
    // A conflicting or foreign CIDR is not ours to judge here: occupy what fits, one CIDR at a time.
    if (!ipam.occupy(owner, cidrs).success) for (const cidr of cidrs) ipam.occupy(`${owner}#${cidr}`, [cidr]);
  }
  const allocated = ipam.allocate(node);
  if (!allocated.success) throw new DatastoreError(allocated.error.code, allocated.error.message, { cause: allocated.error });
  return allocated.data.podCidrs;
}

/** Whether cidr lies inside one of the cluster CIDRs. */
export function insideClusterCidrs(config: NetworkConfig, cidr: string): boolean {
  const inner = safeParseCidr(cidr);
  if (!inner.success) return false;
  return config.clusterCidrs.some((text) => {
    const pool = safeParseCidr(text);
    return pool.success && cidrContains(pool.data, inner.data);
  });
}
