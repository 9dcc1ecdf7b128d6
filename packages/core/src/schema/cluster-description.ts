import { z } from "zod";
import { cidrContains, cidrsOverlap } from "../cidr/index.ts";
import { DEFAULT_VXLAN_DEVICE } from "../routes/types.ts";
import { cidrString, interfaceName, ipString as ipOnly, nodeName, onePerFamily, parsedCidr, subnetString, vtepMacString } from "./fields.ts";
import { networkConfigShape } from "./network-config.ts";

/**
 * A node's underlay address as `ip addr` shows it: `172.31.0.11/24` (the prefix names its L2 subnet, which the auto
 * backend uses) or a bare `172.31.0.11` (subnet unknown: auto reaches it over VXLAN).
 */
const underlayAddress = z.string().transform((value, ctx) => {
  const slash = value.indexOf("/");
  const address = slash === -1 ? value : value.slice(0, slash);
  const ip = ipOnly.safeParse(address);
  if (!ip.success) {
    ctx.addIssue({ code: "custom", message: ip.error.issues[0]?.message ?? `"${value}" is not an IP address` });
    return z.NEVER;
  }
  if (slash === -1) return { ip: ip.data, subnet: undefined };
  const subnet = subnetString.safeParse(value);
  if (!subnet.success) {
    ctx.addIssue({ code: "custom", message: subnet.error.issues[0]?.message ?? `"${value}" is not an address/prefix` });
    return z.NEVER;
  }
  return { ip: ip.data, subnet: subnet.data };
});

const describedNode = z
  .object({
    name: nodeName,
    underlayIps: z
      .array(underlayAddress)
      .min(1, "a node needs an underlay IP")
      .max(2, "at most two underlay IPs (one per family)")
      .superRefine((values, ctx) => onePerFamily(values.map((value) => value.ip), ctx, "underlay IP")),
    podCidrs: z.array(cidrString).max(2).superRefine((values, ctx) => onePerFamily(values, ctx, "pod CIDR")).optional(),
    vtepMac: vtepMacString.optional(),
    underlayDevice: interfaceName.optional(),
    mtu: networkConfigShape.mtu,
  })
  .strict();

/**
 * The cluster description `flatnet plan` reads (YAML or JSON): the network config plus the nodes, each with its
 * underlay addresses (`172.31.0.11/24`: the prefix is its L2 subnet) and optionally pod CIDRs it already holds.
 * @example
 * clusterDescriptionSchema.parse({ clusterCidrs: ["10.244.0.0/16"], backend: "auto",
 *   nodes: [{ name: "node-1", underlayIps: ["172.31.0.11/24"] }] })
 */
export const clusterDescriptionSchema = z
  .object({
    ...networkConfigShape,
    backend: networkConfigShape.backend.removeDefault().default("auto"),
    mtu: networkConfigShape.mtu.unwrap().default(1500),
    underlayDevice: interfaceName.default("eth0"),
    vxlanDevice: interfaceName.default(DEFAULT_VXLAN_DEVICE),
    nodes: z.array(describedNode).min(1, "a cluster needs at least one node"),
  })
  .strict()
  .superRefine((cluster, ctx) => {
    const names = new Map<string, number>();
    const ips = new Map<string, string>();
    const pools = cluster.clusterCidrs.map(parsedCidr);
    const held: { node: string; cidr: ReturnType<typeof parsedCidr>; text: string }[] = [];
    cluster.nodes.forEach((node, index) => {
      const first = names.get(node.name);
      if (first !== undefined) ctx.addIssue({ code: "custom", path: ["nodes", index, "name"], message: `node name "${node.name}" is already used by nodes.${first}; names must be unique` });
      else names.set(node.name, index);
      node.underlayIps.forEach(({ ip }, ipIndex) => {
        const owner = ips.get(ip);
        if (owner !== undefined) ctx.addIssue({ code: "custom", path: ["nodes", index, "underlayIps", ipIndex], message: `underlay IP ${ip} is already node "${owner}"'s; underlay IPs must be unique` });
        else ips.set(ip, node.name);
      });
      (node.podCidrs ?? []).forEach((text, cidrIndex) => {
        const cidr = parsedCidr(text);
        const path = ["nodes", index, "podCidrs", cidrIndex];
        if (!pools.some((pool) => cidrContains(pool, cidr))) {
          ctx.addIssue({ code: "custom", path, message: `pod CIDR ${text} is outside the cluster CIDRs (${cluster.clusterCidrs.join(", ")})` });
          return;
        }
        const clash = held.find((other) => cidrsOverlap(other.cidr, cidr));
        if (clash !== undefined) ctx.addIssue({ code: "custom", path, message: `pod CIDR ${text} overlaps ${clash.text} of node "${clash.node}"` });
        held.push({ node: node.name, cidr, text });
      });
    });
  });

/** A validated cluster description. */
export type ClusterDescription = z.output<typeof clusterDescriptionSchema>;
/** A cluster description as written. */
export type ClusterDescriptionInput = z.input<typeof clusterDescriptionSchema>;
