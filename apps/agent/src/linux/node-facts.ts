import { parseNftRuleset, type FirewallRule, type StateNeighbour } from "@flatnet/core";
import { execInNetns, runCommand } from "./exec.ts";

/** The firewall rules of a namespace that drop, reject or rewrite addresses (`nft -j list ruleset`). */
export async function readFirewall(netns: string): Promise<FirewallRule[]> {
  const result = await execInNetns({ name: netns }, "nft", ["-j", "list", "ruleset"]);
  if (result.exitCode !== 0) throw new Error(`nft -j list ruleset in ${netns} exited ${result.exitCode}: ${result.stderr.trim()}`);
  return parseNftRuleset(result.stdout.trim() === "" ? {} : JSON.parse(result.stdout));
}

/** MTU and MAC of a device in a namespace, or undefined when it does not exist. */
export async function readLink(netns: string, device: string): Promise<{ mtu?: number; mac?: string } | undefined> {
  const result = await runCommand("ip", ["-n", netns, "-j", "link", "show", "dev", device]);
  if (result.exitCode !== 0) return undefined;
  const link = (JSON.parse(result.stdout) as { mtu?: number; address?: string }[])[0];
  return link === undefined ? undefined : { ...(link.mtu === undefined ? {} : { mtu: link.mtu }), ...(link.address === undefined ? {} : { mac: link.address }) };
}

/** Neighbour entries (with a link-layer address) on a device. */
export async function readNeighbours(netns: string, device: string): Promise<StateNeighbour[]> {
  const result = await runCommand("ip", ["-n", netns, "-j", "neigh", "show", "dev", device]);
  if (result.exitCode !== 0) return [];
  return (JSON.parse(result.stdout) as { dst?: string; lladdr?: string }[]).flatMap((n) =>
    n.dst !== undefined && n.lladdr !== undefined ? [{ ip: n.dst, mac: n.lladdr, dev: device }] : [],
  );
}
