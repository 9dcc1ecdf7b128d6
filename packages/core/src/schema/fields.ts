import { z } from "zod";
import { type Cidr, formatCidr, safeParseCidr } from "../cidr/index.ts";
import { formatIp, type IpFamily, ipFamilyOf, safeParseIp } from "../ip/index.ts";
import { safeParseVtepMac } from "../routes/vtep-mac.ts";
import { INTERFACE_NAME_PATTERN, INTERFACE_NAME_RULE } from "../interface-name.ts";

// Field schemas shared by the boundary schemas: strings in, canonical strings out, rules in the message.

/** An IPv4 or IPv6 address, canonicalised (`2001:DB8::0:1` -> `2001:db8::1`). */
export const ipString = z.string().transform((value, ctx) => {
  const parsed = safeParseIp(value);
  if (parsed.success) return formatIp(parsed.data);
  ctx.addIssue({ code: "custom", message: parsed.error.message });
  return z.NEVER;
});

/** A CIDR with no host bits, canonicalised. */
export const cidrString = z.string().transform((value, ctx) => {
  const parsed = safeParseCidr(value);
  if (parsed.success) return formatCidr(parsed.data);
  ctx.addIssue({ code: "custom", message: parsed.error.message });
  return z.NEVER;
});

/** A subnet written as a CIDR or as an interface address (`172.31.0.11/24` names 172.31.0.0/24), canonicalised. */
export const subnetString = z.string().transform((value, ctx) => {
  const parsed = safeParseCidr(value, { maskHostBits: true });
  if (parsed.success) return formatCidr(parsed.data);
  ctx.addIssue({ code: "custom", message: parsed.error.message });
  return z.NEVER;
});

/** A unicast, non-zero MAC, lowercased. */
export const vtepMacString = z.string().transform((value, ctx) => {
  const parsed = safeParseVtepMac(value);
  if (parsed.success) return parsed.data;
  ctx.addIssue({ code: "custom", message: parsed.error.message });
  return z.NEVER;
});

/** A Kubernetes node name: an RFC 1123 DNS subdomain (lowercase alphanumerics, '-' and '.', at most 253). */
export const nodeName = z
  .string()
  .max(253, "a node name has at most 253 characters")
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, "a node name must be a DNS subdomain: lowercase letters, digits, '-' and '.', starting and ending alphanumeric");

/** A Linux interface name under the one rule of every name that reaches a kernel (INTERFACE_NAME_PATTERN). */
export const interfaceName = z.string().regex(INTERFACE_NAME_PATTERN, INTERFACE_NAME_RULE);

/** Rejects a list holding two values of one family (one IP or CIDR per family). */
export function onePerFamily(values: readonly string[], ctx: z.RefinementCtx, what: string): void {
  const seen = new Map<IpFamily, number>();
  values.forEach((value, index) => {
    const family = ipFamilyOf(value);
    if (family === undefined) return;
    const first = seen.get(family);
    if (first !== undefined) {
      ctx.addIssue({ code: "custom", path: [index], message: `a second ${family} ${what} (${values[first]} is the first); at most one per family` });
    } else {
      seen.set(family, index);
    }
  });
}

/** Parses a CIDR string that a schema already validated. */
export function parsedCidr(value: string): Cidr {
  const parsed = safeParseCidr(value, { maskHostBits: true });
  if (!parsed.success) throw new Error(`invariant: schema-validated CIDR ${JSON.stringify(value)} does not parse`);
  return parsed.data;
}
