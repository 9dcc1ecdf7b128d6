import { nthAddress, parseCidr } from "../cidr/cidr.ts";
import { formatIp } from "../ip/address.ts";

/** The node's pod bridge: holds the gateway address of each pod CIDR; every pod's host veth is its port. */
export const POD_BRIDGE = "fn-br0";

/** The name prefix of a pod's host-side veth (a port of the pod bridge). */
export const HOST_VETH_PREFIX = "fnv";

/**
 * The pod bridge's address in a pod CIDR: its first usable address with the CIDR's prefix, the pods' default gateway.
 * Throws on a string that is not a CIDR.
 * @example bridgeGateway("10.244.1.0/24") === "10.244.1.1/24"
 */
export function bridgeGateway(podCidr: string): string {
  const cidr = parseCidr(podCidr);
  return `${formatIp(nthAddress(cidr, 1))}/${cidr.prefix}`;
}
