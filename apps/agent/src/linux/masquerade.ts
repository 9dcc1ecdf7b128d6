import { cidrIncludes, ipFamilyOf, isCidr, isIp } from "@flatnet/core";
import { KernelCommandError, execInNetns } from "./exec.ts";

/** flatnet's own nftables table; nothing else in the namespace's ruleset is read or changed. */
export const NFT_TABLE = "flatnet";

// kube-proxy marks packets it wants masqueraded with 0x4000; it masquerades those itself.
const KUBE_MARK_MASQ = "0x00004000";

/**
 * The nftables script for masquerade: traffic from the cluster CIDRs to outside them (and not to multicast) leaves
 * with the node's address; pod to pod is never rewritten, so receivers see real pod IPs. Nor is pod to node:
 * `nodeIps` (every cluster node's underlay IPs) are excluded too, so a node sees a pod's real IP. The script replaces the table
 * in one transaction (declare, delete, define), so there is never a moment without rules.
 */
export function renderMasqueradeRuleset(clusterCidrs: readonly string[], nodeIps: readonly string[] = []): string {
  const v4 = clusterCidrs.filter((c) => ipFamilyOf(c) === "IPv4");
  const v6 = clusterCidrs.filter((c) => ipFamilyOf(c) === "IPv6");
  // An address inside a cluster CIDR is excluded already (and would be an overlapping interval to nft).
  const outside = nodeIps.filter((ip) => !clusterCidrs.some((cidr) => cidrIncludes(cidr, ip)));
  const nodes4 = [...new Set(outside.filter((ip) => ipFamilyOf(ip) === "IPv4"))];
  const nodes6 = [...new Set(outside.filter((ip) => ipFamilyOf(ip) === "IPv6"))];
  const rules: string[] = [`meta mark & ${KUBE_MARK_MASQ} == ${KUBE_MARK_MASQ} return`];
  if (v4.length > 0) rules.push(`ip saddr { ${v4.join(", ")} } ip daddr != { ${[...v4, ...nodes4, "224.0.0.0/4"].join(", ")} } masquerade fully-random`);
  if (v6.length > 0) rules.push(`ip6 saddr { ${v6.join(", ")} } ip6 daddr != { ${[...v6, ...nodes6, "ff00::/8"].join(", ")} } masquerade fully-random`);
  return [
    `table inet ${NFT_TABLE} {}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    ...rules.map((r) => `    ${r}`),
    "  }",
    "}",
    "",
  ].join("\n");
}

/** Installs (or atomically replaces) the masquerade table in `netns`. */
export async function ensureMasquerade(netns: string, clusterCidrs: readonly string[], nodeIps: readonly string[] = []): Promise<void> {
  for (const cidr of clusterCidrs) {
    if (!isCidr(cidr)) throw new KernelCommandError(["nft", "-f", "-"], 2, `cluster CIDR "${cidr}" is not a CIDR (network/prefix, host bits zero)`);
  }
  for (const ip of nodeIps) {
    if (!isIp(ip)) throw new KernelCommandError(["nft", "-f", "-"], 2, `node IP "${ip}" is not an IP address`);
  }
  await runNft(netns, renderMasqueradeRuleset(clusterCidrs, nodeIps));
}

/** Removes flatnet's table; succeeds when it is not there. */
export function removeMasquerade(netns: string): Promise<void> {
  return runNft(netns, `table inet ${NFT_TABLE} {}\ndelete table inet ${NFT_TABLE}\n`);
}

async function runNft(netns: string, script: string): Promise<void> {
  const result = await execInNetns({ name: netns }, "nft", ["-f", "-"], script);
  if (result.exitCode !== 0) throw new KernelCommandError(["ip", "netns", "exec", netns, "nft", "-f", "-"], result.exitCode, result.stderr);
}
