import { HOST_VETH_PREFIX, ipFamilyOf, isIp, POD_BRIDGE, safeParseInterfaceAddress, safeParseInterfaceName } from "@flatnet/core";
import {
  type BatchFailure,
  KernelCommandError,
  type NetnsTarget,
  assertNetnsName,
  execInNetns,
  failureCode,
  ipBatch,
  netnsArgument,
  parseBatchFailures,
  parseJsonStream,
  runBatch,
  runCommand,
} from "./exec.ts";
import { linkAddresses, type IpLinkJson, type IpRouteJson, routeDestination } from "./read.ts";
import { setSysctls } from "./sysctl.ts";

export { POD_BRIDGE };

/** `fnv` + 8 hex digits of SHA-256(containerId NUL ifName): stable across retries, 11 characters (IFNAMSIZ is 16). */
export function hostVethName(containerId: string, ifName: string): string {
  return HOST_VETH_PREFIX + hex(sha256(`${containerId}\0${ifName}`)).slice(0, 8);
}

/** A locally administered unicast MAC derived from `seed`, so a recreated bridge keeps the MAC its pods have cached. */
export function stableMac(seed: string): string {
  const bytes = sha256(seed).subarray(0, 6);
  bytes[0] = ((bytes[0] ?? 0) | 0x02) & 0xfe;
  return hex(bytes, ":");
}

interface BunHasher { update(data: string): BunHasher; digest(): Uint8Array }
type BunCrypto = { CryptoHasher: new (algorithm: "sha256") => BunHasher };

// SHA-256 without loading node:crypto under Bun (the CNI plugin): that import alone costs ~2.5 ms of start-up.
function sha256(text: string): Uint8Array {
  const bun = (globalThis as { Bun?: BunCrypto }).Bun;
  if (bun !== undefined) return new bun.CryptoHasher("sha256").update(text).digest();
  const { createHash } = process.getBuiltinModule("node:crypto");
  return createHash("sha256").update(text).digest();
}

/** Bytes as two lowercase hex digits each, joined by `separator` (":" for a MAC). */
export function hex(bytes: Uint8Array, separator = ""): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(separator);
}

export interface BridgeSpec {
  /** Default "fn-br0". */
  name?: string;
  /** Gateway addresses with the pod CIDR's prefix: the first usable IP of each pod CIDR ("10.244.1.1/24"). */
  gateways: string[];
  /** The backend's pod MTU. */
  mtu: number;
}

export interface BridgeState {
  name: string;
  mac: string;
  mtu: number;
  addresses: string[];
  /** Whether anything had to change (one process when nothing did: the read). */
  changed: boolean;
}

/** Ensures the node bridge exists, is up, has the pod MTU and exactly the given gateway addresses (others are removed). */
export async function ensureBridge(netns: string, spec: BridgeSpec): Promise<BridgeState> {
  const name = spec.name ?? POD_BRIDGE;
  assertNetnsName(netns);
  assertIfName(name);
  for (const gateway of spec.gateways) assertCidr(gateway, "gateway");
  assertMtu(spec.mtu);
  const current = await readLink({ name: netns }, name);
  const lines: string[] = [];
  if (current === undefined) {
    const created = await runBatch("ip", netns, [`link add ${name} address ${stableMac(`${netns}/${name}`)} mtu ${spec.mtu} type bridge`]);
    if (created.exitCode !== 0 && failureCode(created) !== "EEXIST") {
      throw new KernelCommandError(["ip", "-n", netns, "link", "add", name, "type", "bridge"], created.exitCode, created.stderr, created.failures);
    }
    // Linux sends neighbour solicitations from the link-local address and holds them while it is tentative: without
    // this, a new bridge cannot resolve its first pods over IPv6 for the 1-2 s of DAD.
    await setSysctls(netns, { [`net/ipv6/conf/${name}/accept_dad`]: "0" }, { ignoreMissing: true });
  }
  if (current === undefined || current.mtu !== spec.mtu || !(current.flags ?? []).includes("UP")) lines.push(`link set ${name} mtu ${spec.mtu} up`);
  const have = linkAddresses(current);
  for (const address of have) if (!spec.gateways.includes(address)) lines.push(`addr del ${address} dev ${name}`);
  for (const gateway of spec.gateways) if (!have.includes(gateway)) lines.push(addrAdd(gateway, name, "replace"));
  await ipBatch(netns, lines);
  const mac = current?.address ?? stableMac(`${netns}/${name}`);
  return { name, mac, mtu: spec.mtu, addresses: [...spec.gateways], changed: lines.length > 0 };
}

export interface PodAttachment {
  /** The node namespace holding the bridge (a name in /run/netns). */
  nodeNetns: string;
  /** The pod's namespace, by name or by path (/proc/PID/ns/net, /var/run/netns/cni-...). */
  podNetns: NetnsTarget;
  containerId: string;
  /** The interface name inside the pod, usually "eth0". */
  ifName: string;
  /** The pod's addresses with the pod CIDR's prefix, at most one per family ("10.244.1.5/24"). */
  addresses: string[];
  /** The default gateway per family, the bridge's address in that pod CIDR ("10.244.1.1"). */
  gateways: string[];
  mtu: number;
  bridge?: string;
}

export interface AttachedPod {
  hostIfName: string;
  hostMac: string;
  podIfName: string;
  podMac: string;
  mtu: number;
  addresses: string[];
  gateways: string[];
}

/** What the node half of an attachment needs: the spec without its addresses and gateways. */
export type PodLinkSpec = Omit<PodAttachment, "addresses" | "gateways">;

/** The host end of a pod's veth pair, as `createPodLink` made it. */
export type PodLink = Pick<AttachedPod, "hostIfName" | "hostMac">;

/**
 * Attaches a pod: a veth pair created in the node namespace with its pod end placed straight into the pod namespace,
 * the host end enslaved to the bridge, the pod end addressed with a default route per family. Two processes (one
 * `ip -batch` per namespace); a host veth left from an earlier attempt of the same container is replaced.
 */
export async function attachPod(spec: PodAttachment): Promise<AttachedPod> {
  validateAttachment(spec);
  return configurePodLink(spec, await createPodLink(spec));
}

/** Attach, node half: the veth pair (pod end into the pod namespace) with the host end on the bridge and up. */
export async function createPodLink(spec: PodLinkSpec): Promise<PodLink> {
  validateLink(spec);
  const hostIfName = hostVethName(spec.containerId, spec.ifName);
  const bridge = spec.bridge ?? POD_BRIDGE;
  const nodeLines = [
    `link add ${hostIfName} mtu ${spec.mtu} type veth peer name ${spec.ifName} mtu ${spec.mtu} netns ${netnsArgument(spec.podNetns)}`,
    `link set ${hostIfName} master ${bridge} up`,
    `link show dev ${hostIfName}`,
  ];
  let node = await runBatch("ip", spec.nodeNetns, nodeLines, { json: true });
  if (failureCode(node) === "EEXIST" && node.failures[0]?.line === 1) {
    // A retried ADD: drop our own leftover host veth (its peer goes with it) and try once more.
    await deleteLink(spec.nodeNetns, hostIfName);
    node = await runBatch("ip", spec.nodeNetns, nodeLines, { json: true });
  }
  if (node.exitCode !== 0) {
    if (node.failures[0]?.line !== 1) await deleteLink(spec.nodeNetns, hostIfName);
    throw new KernelCommandError(["ip", "-n", spec.nodeNetns, "-batch", "-"], node.exitCode, node.stderr, node.failures);
  }
  const hostLink = (parseJsonStream(node.stdout)[0] as IpLinkJson[] | undefined)?.[0];
  return { hostIfName, hostMac: hostLink?.address ?? "" };
}

/** Attach, pod half: addresses, default routes and up on the pod end; removes the veth pair when it fails. */
export async function configurePodLink(spec: PodAttachment, link: PodLink): Promise<AttachedPod> {
  validateAttachment(spec);
  const podLines = [
    "link set lo up",
    `link set ${spec.ifName} up`,
    ...spec.addresses.map((a) => addrAdd(a, spec.ifName, "add")),
    ...spec.gateways.map((g) => `route add ${ipFamilyOf(g) === "IPv4" ? "0.0.0.0/0" : "::/0"} via ${g} dev ${spec.ifName}`),
    `link show dev ${spec.ifName}`,
  ];
  const pod = await podBatch(spec.podNetns, podLines);
  if (pod.exitCode !== 0) {
    await deleteLink(spec.nodeNetns, link.hostIfName);
    throw new KernelCommandError(pod.argv, pod.exitCode, pod.stderr, pod.failures);
  }
  const podLink = (parseJsonStream(pod.stdout)[0] as IpLinkJson[] | undefined)?.[0];
  return attachedPod(spec, link, podLink?.address ?? "");
}

/** What an attach reports: the link's host end, the pod end's MAC, and the spec's MTU, addresses and gateways. */
export function attachedPod(spec: PodAttachment, link: PodLink, podMac: string): AttachedPod {
  return { hostIfName: link.hostIfName, hostMac: link.hostMac, podIfName: spec.ifName, podMac, mtu: spec.mtu, addresses: [...spec.addresses], gateways: [...spec.gateways] };
}

export type PodRef = Pick<PodAttachment, "nodeNetns" | "containerId" | "ifName">;

/** Detaches a pod by deleting its host veth (the pod end goes with it). A veth or namespace already gone is success. */
export async function detachPod(ref: PodRef): Promise<{ removed: boolean }> {
  return { removed: await deleteLink(ref.nodeNetns, hostVethName(ref.containerId, ref.ifName)) };
}

export interface PodInterfaceState {
  ifName: string;
  mac: string;
  mtu: number;
  up: boolean;
  /** Global addresses with their prefix. */
  addresses: string[];
  /** Main-table routes through the interface; `gateway` absent for connected routes. */
  routes: { dst: string; gateway?: string }[];
}

/** What the pod's interface looks like now (for CNI CHECK); undefined when the interface or namespace is not there. */
export async function inspectPod(podNetns: NetnsTarget, ifName: string): Promise<PodInterfaceState | undefined> {
  assertIfName(ifName);
  const result = await podBatch(podNetns, [`addr show dev ${ifName}`, "route show table all"]);
  if (result.exitCode !== 0) {
    const code = failureCode(result);
    if (code === "ENODEV" || code === "ENONS" || code === "ENOENT") return undefined;
    throw new KernelCommandError(result.argv, result.exitCode, result.stderr, result.failures);
  }
  const [links = [], routes = []] = parseJsonStream(result.stdout) as [IpLinkJson[]?, IpRouteJson[]?];
  const link = links[0];
  if (link === undefined) return undefined;
  return {
    ifName,
    mac: link.address ?? "",
    mtu: link.mtu ?? 0,
    up: (link.flags ?? []).includes("UP"),
    addresses: linkAddresses(link),
    routes: routes
      .filter((r) => r.dev === ifName && (r.table === undefined || r.table === "main") && (r.type === undefined || r.type === "unicast"))
      .flatMap((r) => {
        if (r.dst === undefined) return [];
        const dst = routeDestination(r.dst, r.gateway);
        if (dst.startsWith("fe80:")) return [];
        return [r.gateway === undefined ? { dst } : { dst, gateway: r.gateway }];
      }),
  };
}

interface PodBatchResult { argv: string[]; exitCode: number; stdout: string; stderr: string; failures: BatchFailure[] }

// By name: `ip -n NAME`; by path: `nsenter --net=PATH ip` (iproute2 only resolves names under /run/netns).
async function podBatch(target: NetnsTarget, lines: string[]): Promise<PodBatchResult> {
  if ("name" in target) {
    const result = await runBatch("ip", target.name, lines, { json: true, details: true });
    return { ...result, argv: ["ip", "-n", target.name, "-batch", "-"] };
  }
  const result = await execInNetns(target, "ip", ["-json", "-details", "-batch", "-"], lines.join("\n") + "\n");
  return { ...result, argv: ["nsenter", `--net=${target.path}`, "ip", "-batch", "-"], failures: parseBatchFailures(result.stderr, lines) };
}

async function readLink(target: NetnsTarget, name: string): Promise<IpLinkJson | undefined> {
  const result = await podBatch(target, [`addr show dev ${name}`]);
  if (result.exitCode !== 0) {
    if (failureCode(result) === "ENODEV") return undefined;
    throw new KernelCommandError(result.argv, result.exitCode, result.stderr);
  }
  return (parseJsonStream(result.stdout)[0] as IpLinkJson[] | undefined)?.[0];
}

/** Deletes a link; false when it (or the namespace) was already gone. */
async function deleteLink(netns: string, name: string): Promise<boolean> {
  assertNetnsName(netns);
  const argv = ["-n", netns, "link", "del", name];
  const result = await runCommand("ip", argv);
  if (result.exitCode === 0) return true;
  const code = failureCode(result);
  if (code === "ENODEV" || code === "ENONS") return false;
  throw new KernelCommandError(["ip", ...argv], result.exitCode, result.stderr);
}

/** Names of flatnet's host veths (fnv*) on `bridge` in `netns`; none when the namespace or bridge is gone. */
export async function listHostVeths(netns: string, bridge: string): Promise<string[]> {
  const result = await runBatch("ip", netns, [`link show master ${bridge} type veth`], { json: true });
  if (result.exitCode !== 0) {
    const code = failureCode(result);
    if (code === "ENONS" || code === "ENODEV") return [];
    throw new KernelCommandError(["ip", "-n", netns, "link", "show", "type", "veth"], result.exitCode, result.stderr, result.failures);
  }
  const links = (parseJsonStream(result.stdout)[0] as { ifname?: string }[] | undefined) ?? [];
  return links.flatMap((l) => (l.ifname?.startsWith(HOST_VETH_PREFIX) ? [l.ifname] : []));
}

/** Deletes a flatnet host veth by name (GC's sweep of veths no attachment owns); one already gone is success. */
export async function detachLink(netns: string, name: string): Promise<void> {
  if (!name.startsWith(HOST_VETH_PREFIX)) throw new Error(`invariant: GC deletes only flatnet host veths, not ${JSON.stringify(name)}`);
  await deleteLink(netns, name);
}

// IPv6 without DAD: the address is usable at once and a pod's first packet does not wait a second for it.
function addrAdd(cidr: string, dev: string, verb: "add" | "replace"): string {
  return `addr ${verb} ${cidr} dev ${dev}${ipFamilyOf(cidr) === "IPv6" ? " nodad" : ""}`;
}

function validateLink(spec: PodLinkSpec): void {
  assertNetnsName(spec.nodeNetns);
  netnsArgument(spec.podNetns);
  assertIfName(spec.ifName);
  if (spec.containerId.length === 0) fail(`container ID "" must not be empty`);
  assertMtu(spec.mtu);
  if (spec.bridge !== undefined) assertIfName(spec.bridge);
}

function validateAttachment(spec: PodAttachment): void {
  validateLink(spec);
  for (const a of spec.addresses) assertCidr(a, "pod address");
  for (const g of spec.gateways) if (!isIp(g)) fail(`gateway "${g}" must be a bare IP address`);
  const families = spec.addresses.map(ipFamilyOf);
  if (new Set(families).size !== families.length) fail(`pod addresses ${JSON.stringify(spec.addresses)} must have at most one per family`);
  for (const g of spec.gateways) if (!families.includes(ipFamilyOf(g))) fail(`gateway "${g}" has no pod address of its family in ${JSON.stringify(spec.addresses)}`);
}

function assertIfName(ifName: string): void {
  const parsed = safeParseInterfaceName(ifName);
  if (!parsed.success) fail(parsed.error.message);
}

function assertMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) fail(`MTU ${mtu} must be an integer in 68-65535`);
}

function assertCidr(cidr: string, what: string): void {
  const parsed = safeParseInterfaceAddress(cidr);
  if (!parsed.success) fail(`${what} "${cidr}" must be address/prefix: ${parsed.error.message}`);
}

function fail(message: string): never {
  throw new PodSpecError(message);
}

/** An attach/inspect request that cannot be right (bad name, MTU, address); nothing was changed. */
export class PodSpecError extends Error {
  readonly code = "ERR_INVALID_POD_SPEC";
  override readonly name = "PodSpecError";
}
