import { timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { asHostCidr, cidrContains, type DialRequest, parseCidr, safeParseCidr, safeParseIp } from "@flatnet/core";

// Who may make a responder dial, and what (issue 14.1). A responder that dials anything for anyone is an open relay
// and scanner from a pod's (or, for the node's responder, the node's) address: dial requests over TCP need the
// orchestrator's token, and every target must be a responder (an IP literal in the allowed networks, on the probe
// port). The control socket (a unix socket, 0600) is trusted: only its owner can connect.

/** The header an orchestrator sends its probe token in (not Authorization: the API server's pods/proxy may strip it). */
export const PROBE_TOKEN_HEADER = "x-flatnet-probe-token";
/** The environment variable a responder or agent reads the probe token from. */
export const PROBE_TOKEN_ENV = "FLATNET_PROBE_TOKEN";

export interface DialPolicy {
  /** The token a TCP caller must present; undefined: `/v1/dial` is served on the control socket only. */
  token?: string;
  /** Networks a TCP caller's targets must lie in (the cluster's pod CIDRs, node IPs as /32 or /128). */
  allowedCidrs: readonly string[];
  /** The probe port: the only port a target may have. */
  port: number;
}

/** Why a dial request is refused: HTTP status, problem code and a detail naming the value and the rule. */
export interface DialRefusal {
  status: 400 | 401 | 403;
  code: string;
  detail: string;
}

/** Whether the caller may ask for a dial (or another token-gated `route`, e.g. the evidence relay) at all; undefined when it may. */
export function authorizeDial(policy: DialPolicy, via: "control" | "tcp", presented: string | string[] | undefined, route = "POST /v1/dial"): DialRefusal | undefined {
  if (via === "control") return undefined;
  if (policy.token === undefined) {
    return { status: 403, code: "ERR_DIAL_FORBIDDEN", detail: `this responder serves ${route} only on its control socket (it has no probe token); over TCP it is not served here` };
  }
  if (typeof presented !== "string" || !sameSecret(presented, policy.token)) {
    return { status: 401, code: "ERR_DIAL_UNAUTHORIZED", detail: `${route} needs the orchestrator's probe token in the ${PROBE_TOKEN_HEADER} header` };
  }
  return undefined;
}

/** Whether every target is an IP literal on the probe port (and, over TCP, inside the allowed networks); undefined when so. */
export function checkDialTargets(policy: DialPolicy, via: "control" | "tcp", request: DialRequest): DialRefusal | undefined {
  const allowed = policy.allowedCidrs.map((text) => parseCidr(text));
  for (const target of request.targets) {
    const refuse = (rule: string): DialRefusal => ({
      status: 400,
      code: "ERR_DIAL_TARGET",
      detail: `target ${JSON.stringify(`${target.ip}:${target.port}`)} (pair ${JSON.stringify(target.pairId.slice(0, 200))}) ${rule}`,
    });
    const ip = safeParseIp(target.ip);
    if (!ip.success || isIP(target.ip) === 0) return refuse("is not an IP literal; a responder dials only IPv4 or IPv6 addresses");
    if (target.port !== policy.port) return refuse(`is not on the probe port ${policy.port}`);
    if (via === "tcp" && !allowed.some((cidr) => cidr.family === ip.data.family && cidrContains(cidr, ip.data))) {
      return refuse(`is outside the networks this responder dials (${policy.allowedCidrs.join(", ") || "none"})`);
    }
  }
  return undefined;
}

/** The allowed networks from CIDRs and bare IPs (a node IP becomes a /32 or /128); throws naming a bad value. */
export function allowedNetworks(values: readonly string[]): string[] {
  return values.map((value) => {
    const text = asHostCidr(value);
    const parsed = safeParseCidr(text);
    if (!parsed.success) throw new Error(`allowed network "${value}" is not a CIDR or an IP address: ${parsed.error.message}`);
    return text;
  });
}

function sameSecret(presented: string, token: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
