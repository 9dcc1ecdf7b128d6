import * as z from "zod/mini";
import { pick } from "../linux/read.ts";
import { CniCode, CniError } from "./errors.ts";
import { compareVersions, type CniVersion } from "./version.ts";

/** A CNI result in spec 1.1.0 shape; `formatResult` writes it in the version a config asks for. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}
export interface CniInterface { name: string; mac?: string; mtu?: number; sandbox?: string; socketPath?: string; pciID?: string }
export interface CniIpConfig { address: string; gateway?: string; interface?: number }
export interface CniRoute { dst: string; gw?: string; mtu?: number; advmss?: number; priority?: number; table?: number; scope?: number }
export interface CniDns { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] }

// The 1.1.0 fields of each list entry; parsePrevResult keeps only these, formatResult writes them for 1.1.0.
const INTERFACE_KEYS = ["name", "mac", "mtu", "sandbox", "socketPath", "pciID"] as const;
const IP_KEYS = ["address", "gateway", "interface"] as const;
const ROUTE_KEYS = ["dst", "gw", "mtu", "advmss", "priority", "table", "scope"] as const;

// Built on first use: only CHECK and a chained ADD read a prevResult, and schema construction costs start-up time.
let resultSchema: ReturnType<typeof buildResultSchema> | undefined;
function buildResultSchema() {
  const str = z.optional(z.string());
  const num = z.optional(z.number());
  const strings = z.optional(z.array(z.string()));
  const interfaceSchema = z.looseObject({ name: z.string(), mac: str, mtu: num, sandbox: str, socketPath: str, pciID: str });
  const ipSchema = z.looseObject({ address: z.string(), gateway: str, interface: num, version: str /* 0.3.x/0.4.0 only */ });
  const routeSchema = z.looseObject({ dst: z.string(), gw: str, mtu: num, advmss: num, priority: num, table: num, scope: num });
  return z.looseObject({
    cniVersion: str,
    interfaces: z.optional(z.array(interfaceSchema)),
    ips: z.optional(z.array(ipSchema)),
    routes: z.optional(z.array(routeSchema)),
    dns: z.optional(z.looseObject({ nameservers: strings, domain: str, search: strings, options: strings })),
  });
}

/** Parses a prevResult of any supported version into the 1.1 shape (drops 0.4.0's ips[].version); error 7 when malformed. */
export function parsePrevResult(value: unknown, cniVersion: string): CniResult {
  resultSchema ??= buildResultSchema();
  const parsed = resultSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CniError(CniCode.InvalidNetworkConfig, `prevResult is not a CNI result: ${issue ? `${issue.path.join(".") || "prevResult"}: ${issue.message}` : "invalid"}`);
  }
  const raw = parsed.data;
  const result: CniResult = { cniVersion: raw.cniVersion ?? cniVersion };
  if (raw.interfaces) result.interfaces = raw.interfaces.map((i) => pick(i, INTERFACE_KEYS) as CniInterface);
  if (raw.ips) result.ips = raw.ips.map((ip) => pick(ip, IP_KEYS) as CniIpConfig);
  if (raw.routes) result.routes = raw.routes.map((r) => pick(r, ROUTE_KEYS) as CniRoute);
  if (raw.dns) result.dns = raw.dns;
  return result;
}

/** Writes `result` in spec `version`: 1.0.0 drops the fields 1.1.0 added; 0.4.0 also adds ips[].version ("4"/"6"). */
export function formatResult(result: CniResult, version: CniVersion): Record<string, unknown> {
  const v11 = compareVersions(version, "1.1.0") >= 0;
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces) out.interfaces = result.interfaces.map((i) => pick(i, v11 ? INTERFACE_KEYS : ["name", "mac", "sandbox"]));
  if (result.ips) out.ips = result.ips.map((ip) => (version === "0.4.0" ? { version: ip.address.includes(":") ? "6" : "4", ...pick(ip, IP_KEYS) } : pick(ip, IP_KEYS)));
  if (result.routes) out.routes = result.routes.map((r) => pick(r, v11 ? ROUTE_KEYS : ["dst", "gw"]));
  out.dns = result.dns ?? {};
  return out;
}
