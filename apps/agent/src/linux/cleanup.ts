import { DEFAULT_VXLAN_DEVICE, FLATNET_ROUTE_PROTOCOL } from "@flatnet/core";
import { KernelCommandError, classifyKernelMessage, runBatch } from "./exec.ts";
import { removeMasquerade } from "./masquerade.ts";

export interface CleanupOptions {
  vxlanDevice?: string;
}

/**
 * Removes what the agent owns in `netns`: routes of protocol 77 (both families), its VXLAN device (its neighbours and
 * FDB entries go with it) and its nftables table. Pods, their veths and the pod bridge are left alone. Idempotent.
 */
export async function cleanupNode(netns: string, options: CleanupOptions = {}): Promise<void> {
  const device = options.vxlanDevice ?? DEFAULT_VXLAN_DEVICE;
  // `table all` flushes both families in one line; -force goes on when the device is already gone.
  const lines = [`route flush table all proto ${FLATNET_ROUTE_PROTOCOL}`, `link del ${device}`];
  const [result] = await Promise.all([runBatch("ip", netns, lines, { force: true }), removeMasquerade(netns)]);
  const refused = result.failures.filter((f) => !(f.line === 2 && classifyKernelMessage(f.message) === "ENODEV"));
  if (result.exitCode !== 0 && (refused.length > 0 || result.failures.length === 0)) {
    throw new KernelCommandError(["ip", "-n", netns, "-force", "-batch", "-"], result.exitCode, result.stderr, refused);
  }
}
