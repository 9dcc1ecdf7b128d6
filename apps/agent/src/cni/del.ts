import { CniCode, CniError } from "./errors.ts";
import { type Invocation, requireNodeNetns, withStore } from "./invocation.ts";

/**
 * DEL: remove the host veth (its pod end goes with it), then release the addresses. Idempotent and best-effort: an
 * unknown container, a namespace already gone or a second DEL is success. The addresses are released only once the
 * interface is gone, so a failed DEL (error 11, the runtime retries) never frees an address still on a pod.
 */
export async function cmdDel(inv: Invocation): Promise<void> {
  const { env, deps } = inv;
  const nodeNetns = requireNodeNetns(inv);
  try {
    await deps.pods.detach({ nodeNetns, containerId: env.containerId, ifName: env.ifName });
  } catch (error) {
    throw new CniError(CniCode.TryAgainLater, `cannot remove the interface of container ${env.containerId}: ${(error as Error).message}`);
  }
  deps.trace("detached");
  await withStore(inv, (store) => store.release({ containerId: env.containerId, ifName: env.ifName }));
  deps.trace("released");
}
