import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { SubnetFile } from "./netconf.ts";

/** Default path of the subnet file the agent writes and a conflist's `subnetFile` names. */
export const DEFAULT_SUBNET_FILE = "/run/flatnet/subnet.json";

/**
 * Writes the node's pod CIDRs and pod MTU for the CNI plugin (`subnetFile` in the conflist), atomically (temp file +
 * rename) so a plugin never reads half a file. The agent calls it once it knows the node's pod CIDRs and backend MTU.
 */
export function writeSubnetFile(path: string, subnet: SubnetFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const body = JSON.stringify({ podCidrs: subnet.podCidrs, mtu: subnet.mtu }) + "\n";
  writeFileSync(`${path}.tmp`, body, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
}
