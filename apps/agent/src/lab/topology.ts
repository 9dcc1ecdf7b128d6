import { ipFamilyOf, type LabBackend } from "@flatnet/core";
import { planSegments, type SegmentPlan } from "./addressing.ts";
import { addNamespaces, ipBatch, listNamespaces, removeNamespaces, setSysctls } from "../linux/index.ts";
import { isLabNamespace, routerNs, underlayNs } from "./names.ts";

// Every command here runs inside a lab namespace (ip -n NS, or a veth created in one with its peer put in another):
// nothing is ever created in the root namespace.

// nodad: the address is usable at once instead of after IPv6 duplicate address detection (about 1 s).
const addrAdd = (ip: string, subnet: string, dev: string): string =>
  `addr add ${ip}${subnet.slice(subnet.indexOf("/"))} dev ${dev}${ipFamilyOf(ip) === "IPv6" ? " nodad" : ""}`;

/** Namespaces of this lab's shapes (`<prefix>node3`, ...) found now: the leftovers of a crashed run included. */
export async function listLabNamespaces(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((name) => isLabNamespace(prefix, name));
}

/**
 * Creates empty namespaces with loopback up and IPv6 duplicate address detection off, so every interface made in
 * them later is usable at once (a tentative link-local address stalls neighbour discovery through a router for ~1 s).
 */
export async function createNamespaces(names: readonly string[]): Promise<void> {
  await addNamespaces(names);
  await Promise.all(
    names.map(async (name) => {
      await setSysctls(name, { "net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0" });
      await ipBatch(name, ["link set lo up"]);
    }),
  );
}

/** Deletes namespaces by exact name; missing ones are fine. */
export async function deleteNamespaces(names: readonly string[]): Promise<void> {
  const present = new Set(await listNamespaces());
  await removeNamespaces(names.filter((name) => present.has(name)));
}

/** Builds the underlay namespace: one bridge per L2 segment, and for two segments the router joining them. */
export async function createUnderlay(prefix: string, backend: LabBackend, dualStack: boolean): Promise<SegmentPlan[]> {
  const segments = planSegments(backend, dualStack);
  const underlay = underlayNs(prefix);
  const router = routerNs(prefix);
  const withRouter = segments.length > 1;
  await createNamespaces(withRouter ? [underlay, router] : [underlay]);
  const lines: string[] = [];
  for (const segment of segments) {
    // No STP and no forwarding delay: ports forward as soon as they are up.
    lines.push(`link add ${segment.bridge} type bridge stp_state 0 forward_delay 0`, `link set ${segment.bridge} up`);
  }
  if (withRouter) {
    for (const segment of segments) {
      lines.push(
        `link add rt${segment.index} type veth peer name eth${segment.index} netns ${router}`,
        `link set rt${segment.index} master ${segment.bridge} up`,
      );
    }
  }
  await ipBatch(underlay, lines);
  if (withRouter) {
    const routerLines: string[] = [];
    for (const segment of segments) {
      segment.gateways.forEach((gateway, family) => routerLines.push(addrAdd(gateway, segment.subnets[family] ?? "", `eth${segment.index}`)));
      routerLines.push(`link set eth${segment.index} up`);
    }
    await ipBatch(router, routerLines);
    await setSysctls(router, { "net.ipv4.ip_forward": "1", ...(dualStack ? { "net.ipv6.conf.all.forwarding": "1" } : {}) });
  }
  return segments;
}

export interface NodeWiring {
  netns: string;
  /** The underlay bridge port name in the underlay namespace. */
  port: string;
  segment: SegmentPlan;
  underlayIps: string[];
  /** Every segment, to route to the other segments through the router. */
  segments: readonly SegmentPlan[];
}

/** Creates a node namespace wired to its segment's bridge: `eth0` with the underlay IPs and routes to other segments. */
export async function createNode(prefix: string, node: NodeWiring): Promise<void> {
  await createNamespaces([node.netns]);
  await ipBatch(underlayNs(prefix), [
    `link add ${node.port} type veth peer name eth0 netns ${node.netns}`,
    `link set ${node.port} master ${node.segment.bridge} up`,
  ]);
  const lines = node.underlayIps.map((ip, family) => addrAdd(ip, node.segment.subnets[family] ?? "", "eth0"));
  lines.push("link set eth0 up");
  for (const other of node.segments) {
    if (other.index === node.segment.index) continue;
    other.subnets.forEach((subnet, family) => {
      const gateway = node.segment.gateways[family];
      if (gateway !== undefined) lines.push(`route replace ${subnet} via ${gateway} dev eth0`);
    });
  }
  await ipBatch(node.netns, lines);
}
