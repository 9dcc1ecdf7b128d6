// zod/mini, not classic zod: the plugin is a process per call and classic zod costs ~5 ms of start-up (bench/cni).
import * as z from "zod/mini";
import { type Cidr, type IpFamily, POD_BRIDGE, safeParseCidr, safeParseInterfaceName } from "@flatnet/core";
import { NETNS_NAME } from "../linux/exec.ts";
import { pick } from "../linux/read.ts";
import { CniCode, CniError } from "./errors.ts";
import { compareVersions, type CniVersion, requireSupportedVersion } from "./version.ts";

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const dnsSchema = z.object({
  nameservers: z.optional(z.array(z.string())),
  domain: z.optional(z.string()),
  search: z.optional(z.array(z.string())),
  options: z.optional(z.array(z.string())),
});

const attachmentSchema = z.looseObject({ containerID: z.string(), ifname: z.string() });

/** The flatnet network configuration as a runtime passes it on stdin (unknown keys are allowed: runtimes inject their own). */
export const netconfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.string().check(z.regex(NETWORK_NAME, "must start with a letter or digit followed by letters, digits, _ . -")),
  type: z.string(),
  /** This node's pod CIDRs, at most one per family; or `subnetFile` where the agent writes them. */
  podCidrs: z.optional(z.array(z.string()).check(z.minLength(1), z.maxLength(2))),
  subnetFile: z.optional(z.string().check(z.startsWith("/", "must be an absolute path"))),
  mtu: z.optional(z.number().check(z.int(), z.minimum(576), z.maximum(65535))),
  bridge: z.optional(z.string()),
  dataDir: z.optional(z.string().check(z.startsWith("/", "must be an absolute path"))),
  /** The node's network namespace by name (/run/netns); absent: the namespace the plugin runs in (a real node). */
  nodeNetns: z.optional(z.string().check(z.regex(NETNS_NAME, "must be a network namespace name in /run/netns"))),
  /** The agent's API socket: the plugin binary forwards the call there and works in-process when nobody listens. */
  agentSocket: z.optional(z.string().check(z.startsWith("/", "must be an absolute path"))),
  dns: z.optional(dnsSchema),
  prevResult: z.optional(z.unknown()),
  "cni.dev/valid-attachments": z.optional(z.array(attachmentSchema)),
});

/** What the agent writes for the plugin (`subnetFile`): the node's pod CIDRs and the backend's pod MTU. */
export const subnetFileSchema = z.looseObject({
  podCidrs: z.array(z.string()).check(z.minLength(1), z.maxLength(2)),
  mtu: z.number().check(z.int(), z.minimum(576), z.maximum(65535)),
});
export type SubnetFile = z.infer<typeof subnetFileSchema>;

// /run (a tmpfs): pod IP reservations describe pods, and no pod survives a reboot (kind keeps host-local there too).
export const DEFAULT_DATA_DIR = "/run/flatnet/ipam";
export const DEFAULT_MTU = 1500;

/** A validated flatnet netconf; the node's pod CIDRs are resolved later (they may live in the subnet file). */
export interface Netconf {
  cniVersion: CniVersion;
  name: string;
  bridge: string;
  dataDir: string;
  nodeNetns?: string;
  podCidrs?: string[];
  subnetFile?: string;
  mtu?: number;
  dns?: z.infer<typeof dnsSchema>;
  prevResult?: unknown;
  validAttachments?: { containerId: string; ifName: string }[];
}

/** The node's pod network, as the plugin attaches pods to it. */
export interface NodeSubnet {
  pools: Cidr[];
  mtu: number;
}

function describeIssues(error: z.core.$ZodError, what: string): string {
  return error.issues.slice(0, 3).map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : what}: ${issue.message}`).join("; ");
}

/** Parses stdin into a Netconf: error 6 for JSON that does not decode, 1 for an unknown cniVersion, 7 for a bad config. */
export function parseNetconf(stdin: string): Netconf {
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch (error) {
    const snippet = stdin.length > 40 ? stdin.slice(0, 40) + "..." : stdin;
    throw new CniError(CniCode.DecodeFailure, `network configuration on stdin is not JSON (${(error as Error).message}): ${JSON.stringify(snippet)}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CniError(CniCode.DecodeFailure, "network configuration on stdin must be a JSON object");
  }
  const version = (json as { cniVersion?: unknown }).cniVersion;
  if (typeof version !== "string") throw new CniError(CniCode.InvalidNetworkConfig, "network configuration has no cniVersion string");
  const cniVersion = requireSupportedVersion(version);
  const parsed = netconfSchema.safeParse(json);
  if (!parsed.success) throw new CniError(CniCode.InvalidNetworkConfig, `invalid flatnet network configuration: ${describeIssues(parsed.error, "config")}`);
  const raw = parsed.data;
  if (raw.type !== "flatnet") throw new CniError(CniCode.InvalidNetworkConfig, `network configuration type ${JSON.stringify(raw.type)} is not "flatnet"`);
  if (raw.podCidrs !== undefined && raw.subnetFile !== undefined) {
    throw new CniError(CniCode.InvalidNetworkConfig, "network configuration sets both podCidrs and subnetFile; set exactly one");
  }
  if (raw.bridge !== undefined) {
    const bridge = safeParseInterfaceName(raw.bridge);
    if (!bridge.success) throw new CniError(CniCode.InvalidNetworkConfig, `invalid flatnet network configuration: bridge: ${bridge.error.message}`);
  }
  if (raw.podCidrs !== undefined) parsePools(raw.podCidrs, "podCidrs");
  const netconf: Netconf = {
    cniVersion,
    name: raw.name,
    bridge: raw.bridge ?? POD_BRIDGE,
    dataDir: raw.dataDir ?? DEFAULT_DATA_DIR,
    ...pick(raw, ["nodeNetns", "podCidrs", "subnetFile", "mtu", "dns"]),
  };
  if (raw.prevResult !== undefined) netconf.prevResult = raw.prevResult; // not in pick: a null prevResult is kept (and refused)
  const valid = raw["cni.dev/valid-attachments"];
  if (valid !== undefined) netconf.validAttachments = valid.map((a) => ({ containerId: a.containerID, ifName: a.ifname }));
  return netconf;
}

/** GC and STATUS exist from spec 1.1.0 on (skel refuses them for older configs the same way). */
export function requireVersionAtLeast(netconf: Netconf, minimum: CniVersion, command: string): void {
  if (compareVersions(netconf.cniVersion, minimum) < 0) {
    throw new CniError(CniCode.IncompatibleVersion, `${command} needs cniVersion ${minimum} or later; the config says ${JSON.stringify(netconf.cniVersion)}`);
  }
}

// A pod pool needs a network address (VTEP), a gateway and at least one pod: IPv4 /30 and IPv6 /126 at the smallest.
const MAX_POOL_PREFIX: Record<IpFamily, number> = { IPv4: 30, IPv6: 126 };

/** Validates pod CIDRs: canonical, at most one per family, large enough for gateway and pods. */
export function parsePools(cidrs: readonly string[], field: string): Cidr[] {
  const pools: Cidr[] = [];
  for (const text of cidrs) {
    const cidr = safeParseCidr(text);
    if (!cidr.success) throw new CniError(CniCode.InvalidNetworkConfig, `${field}: ${cidr.error.message}`);
    if (cidr.data.prefix > MAX_POOL_PREFIX[cidr.data.family]) {
      throw new CniError(
        CniCode.InvalidNetworkConfig,
        `${field}: pod CIDR ${JSON.stringify(text)} is too small; ${cidr.data.family} pod CIDRs must be /${MAX_POOL_PREFIX[cidr.data.family]} or larger`,
      );
    }
    if (pools.some((p) => p.family === cidr.data.family)) {
      throw new CniError(CniCode.InvalidNetworkConfig, `${field}: two ${cidr.data.family} pod CIDRs; at most one per family`);
    }
    pools.push(cidr.data);
  }
  return pools;
}

/** Reads the agent's subnet file; a missing file means the agent has not set the node up yet (error 11). */
export function parseSubnetFile(path: string, text: string | undefined): SubnetFile {
  if (text === undefined) {
    throw new CniError(CniCode.TryAgainLater, `subnet file ${JSON.stringify(path)} does not exist yet; the flatnet agent writes it once the node has its pod CIDRs`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CniError(CniCode.InvalidNetworkConfig, `subnet file ${JSON.stringify(path)} is not JSON`);
  }
  const parsed = subnetFileSchema.safeParse(json);
  if (!parsed.success) throw new CniError(CniCode.InvalidNetworkConfig, `subnet file ${JSON.stringify(path)}: ${describeIssues(parsed.error, "file")}`);
  return parsed.data;
}
