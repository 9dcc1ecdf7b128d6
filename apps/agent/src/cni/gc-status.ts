import { CniCode, CniError } from "./errors.ts";
import { requireVersionAtLeast } from "./netconf.ts";
import { type Invocation, openStore, requireNodeNetns, resolveSubnet, withStore } from "./invocation.ts";

/**
 * GC (1.1): release every allocation whose attachment is not in `cni.dev/valid-attachments`, then remove the host
 * veths of those attachments (best-effort: the namespace may be gone). A missing list is refused rather than read as
 * "nothing is valid", which would release every pod's address.
 */
export async function cmdGc(inv: Invocation): Promise<void> {
  const { netconf, deps } = inv;
  requireVersionAtLeast(netconf, "1.1.0", "GC");
  const nodeNetns = requireNodeNetns(inv);
  if (netconf.validAttachments === undefined) {
    throw new CniError(CniCode.InvalidNetworkConfig, "GC needs cni.dev/valid-attachments (the list of attachments to keep)");
  }
  const valid = netconf.validAttachments;
  await withStore(inv, async (store) => {
    store.gc(valid);
    deps.trace("gc released");
    // Veths first, then what to keep: ADD allocates before it creates its veth, so every veth listed here belongs to
    // an allocation already committed, which the read below sees (an in-flight ADD's veth is never swept).
    const listed = await deps.pods.listHostVeths(nodeNetns, netconf.bridge).catch(() => [] as string[]);
    deps.trace("gc listed veths");
    // Host veths to keep: the valid attachments' and those of allocations still held (an ADD in flight holds one).
    const keep = new Set([...valid, ...store.list()].map((a) => deps.pods.hostVethName(a.containerId, a.ifName)));
    // Sweep every other flatnet host veth on this network's bridge, including those a crashed ADD, DEL or GC left behind.
    for (const name of listed.filter((n) => !keep.has(n))) await deps.pods.detachLink(nodeNetns, name).catch(() => undefined);
  });
}

/**
 * STATUS (1.1): success when an ADD can succeed now; error 50 when the node is not set up (no subnet file, no node
 * namespace, no IPAM database) or a pod CIDR has no free address left, so the runtime learns before an ADD fails.
 */
export async function cmdStatus(inv: Invocation): Promise<void> {
  const { netconf, deps } = inv;
  requireVersionAtLeast(netconf, "1.1.0", "STATUS");
  const notAvailable = (message: string) => new CniError(CniCode.NotAvailable, message);
  const nodeNetns = requireNodeNetns(inv);
  if (!deps.exists(`/run/netns/${nodeNetns}`)) throw notAvailable(`node network namespace ${JSON.stringify(nodeNetns)} does not exist`);
  let subnet;
  try {
    subnet = resolveSubnet(inv);
  } catch (error) {
    if (error instanceof CniError && error.code === CniCode.TryAgainLater) throw notAvailable(error.message);
    throw error;
  }
  let store;
  try {
    store = openStore(inv);
  } catch (error) {
    throw notAvailable((error as Error).message);
  }
  try {
    for (const pool of store.usage(subnet.pools)) {
      if (pool.free === 0) {
        throw notAvailable(`pod CIDR ${JSON.stringify(pool.pool)} is exhausted: all ${pool.capacity} pod addresses are allocated; ADD fails until pods are deleted`);
      }
    }
  } finally {
    store.close();
  }
}
