import { KernelError } from "../linux/exec.ts";
import { bridgeGateway, POD_BRIDGE } from "@flatnet/core";
import type { AttachedPod, PodAttachment, PodLink, PodLinkSpec } from "../linux/pod.ts";
import type { Allocation } from "../ipam-store/store.ts";
import { CniCode, CniError } from "./errors.ts";
import { type Invocation, podTarget, requireNodeNetns, resolveSubnet, withStore } from "./invocation.ts";
import { type CniInterface, type CniIpConfig, type CniResult, type CniRoute, formatResult, parsePrevResult } from "./result.ts";

/** A pending allocation older than this whose interface is gone is a crashed ADD's leftover (reaped before failing). */
export const PENDING_GRACE_MS = 5 * 60_000;

/**
 * ADD: allocate (durably, pending) -> create the veth pair -> configure the pod half -> mark attached -> result. Any
 * failure rolls back both the interface and the allocation; a crash leaves a pending allocation (and perhaps a veth)
 * that DEL, GC or the exhaustion reaper removes. The allocation comes first so that a host veth never exists without
 * an allocation GC can see: GC lists veths before it reads what to keep (gc-status.ts), so it never sweeps an ADD's.
 */
export async function cmdAdd(inv: Invocation): Promise<Record<string, unknown>> {
  const { env, netconf, deps } = inv;
  const nodeNetns = requireNodeNetns(inv);
  const netns = env.netns ?? "";
  if (!deps.exists(netns)) throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS ${JSON.stringify(netns)} does not exist`);
  const prev = netconf.prevResult === undefined ? undefined : parsePrevResult(netconf.prevResult, netconf.cniVersion);
  const subnet = resolveSubnet(inv);
  const key = { containerId: env.containerId, ifName: env.ifName };
  const linkSpec: PodLinkSpec = { nodeNetns, podNetns: podTarget(netns), containerId: env.containerId, ifName: env.ifName, mtu: subnet.mtu, bridge: netconf.bridge };
  const removeLink = () => deps.pods.detach({ nodeNetns, containerId: env.containerId, ifName: env.ifName }).catch(() => undefined);
  return withStore(inv, async (store) => {
    deps.trace("store open");
    let allocated = store.allocate(key, subnet.pools);
    if (!allocated.success && allocated.error.code === "ERR_POOL_EXHAUSTED") {
      const reaped = await reapCrashedAdds(inv, nodeNetns, store.list().filter((a) => a.state === "pending"));
      if (reaped.length > 0) store.reapPending(PENDING_GRACE_MS, (a) => reaped.some((r) => r.ip === a.ip && r.seq === a.seq));
      allocated = store.allocate(key, subnet.pools);
    }
    if (!allocated.success) {
      throw new CniError(allocated.error.code === "ERR_POOL_EXHAUSTED" ? CniCode.PoolExhausted : CniCode.InvalidNetworkConfig, allocated.error.message);
    }
    const allocations = allocated.data;
    const seq = allocations[0]?.seq ?? 0;
    deps.trace("allocated");

    const spec: PodAttachment = { ...linkSpec, addresses: allocations.map((a) => `${a.ip}/${a.prefix}`), gateways: allocations.map((a) => a.gateway) };
    let attached: AttachedPod;
    try {
      const link = await linkWithBridge(inv, linkSpec, allocations);
      deps.trace("link created");
      attached = await deps.pods.configureLink(spec, link);
    } catch (error) {
      store.release(key, seq);
      throw error instanceof CniError ? error : new CniError(CniCode.KernelFailure, `cannot attach ${env.ifName} of container ${env.containerId}: ${(error as Error).message}`);
    }
    deps.trace("attached");

    if (!store.markAttached(key, seq)) {
      // GC released this allocation while the ADD ran: the address may already be another pod's, so undo the interface.
      await removeLink();
      throw new CniError(CniCode.TryAgainLater, `the addresses of container ${env.containerId} were released (GC) while ADD ran; retry the ADD`);
    }
    deps.trace("committed");
    return formatResult(buildResult(inv, netns, attached, allocations, prev), netconf.cniVersion);
  });
}

// The node bridge is the agent's to create; if it is not there yet, create it from the allocated gateways and retry once.
async function linkWithBridge(inv: Invocation, spec: PodLinkSpec, allocations: Allocation[]): Promise<PodLink> {
  try {
    return await inv.deps.pods.createLink(spec);
  } catch (error) {
    if (!(error instanceof KernelError && error.code === "ENODEV")) throw error;
  }
  const bridge = spec.bridge ?? POD_BRIDGE;
  const gateways = allocations.map((a) => bridgeGateway(a.pool));
  try {
    await inv.deps.pods.ensureBridge(spec.nodeNetns, { name: bridge, gateways, mtu: spec.mtu });
  } catch (raced) {
    // Concurrent first ADDs race to create it: the loser finds it made and only needs the addresses in place.
    if (!(raced instanceof KernelError && raced.code === "EEXIST")) throw raced;
    await inv.deps.pods.ensureBridge(spec.nodeNetns, { name: bridge, gateways, mtu: spec.mtu });
  }
  return await inv.deps.pods.createLink(spec);
}

/** Pending allocations past the grace period whose host veth is gone: ADDs that were killed before they finished. */
async function reapCrashedAdds(inv: Invocation, nodeNetns: string, pending: Allocation[]): Promise<Allocation[]> {
  const cutoff = Date.now() - PENDING_GRACE_MS;
  const gone: Allocation[] = [];
  for (const a of pending) {
    if (a.createdMs > cutoff) continue;
    const host = await inv.deps.pods.inspect({ name: nodeNetns }, inv.deps.pods.hostVethName(a.containerId, a.ifName));
    if (host === undefined) gone.push(a);
  }
  return gone;
}

function buildResult(inv: Invocation, netns: string, attached: AttachedPod, allocations: Allocation[], prev: CniResult | undefined): CniResult {
  const base = prev?.interfaces?.length ?? 0;
  const interfaces: CniInterface[] = [
    { name: attached.hostIfName, mac: attached.hostMac, mtu: attached.mtu },
    { name: attached.podIfName, mac: attached.podMac, mtu: attached.mtu, sandbox: netns },
  ];
  const ips: CniIpConfig[] = allocations.map((a) => ({ address: `${a.ip}/${a.prefix}`, gateway: a.gateway, interface: base + 1 }));
  const routes: CniRoute[] = allocations.map((a) => ({ dst: a.family === "IPv4" ? "0.0.0.0/0" : "::/0", gw: a.gateway }));
  const result: CniResult = {
    cniVersion: inv.netconf.cniVersion,
    interfaces: [...(prev?.interfaces ?? []), ...interfaces],
    ips: [...(prev?.ips ?? []), ...ips],
    routes: [...(prev?.routes ?? []), ...routes],
  };
  const dns = inv.netconf.dns ?? prev?.dns;
  if (dns !== undefined) result.dns = dns;
  return result;
}
