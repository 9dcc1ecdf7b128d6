/**
 * The versioned message protocol between the extension host and its webviews. Both sides validate every
 * message with these schemas: the webview trusts nothing the host did not send in this shape, and the host
 * treats webview messages as untrusted input.
 */
import { probeEventSchema } from "@flatnet/core";
import { z } from "zod";
import { clusterViewSchema } from "./model/cluster-view.ts";
import { pairPathSchema } from "./model/pair-path.ts";

export const PROTOCOL_VERSION = 1 as const;
const v = z.literal(PROTOCOL_VERSION);

export const viewKindSchema = z.enum(["topology", "matrix"]);
export type ViewKind = z.infer<typeof viewKindSchema>;

const endpointSchema = z.object({ node: z.string().min(1), pod: z.string().min(1).optional() });

/** Host -> webview. */
export const hostMessageSchema = z.discriminatedUnion("type", [
  z.object({ v, type: z.literal("cluster"), cluster: clusterViewSchema.nullable() }),
  z.object({ v, type: z.literal("probe-events"), events: z.array(probeEventSchema) }),
  z.object({ v, type: z.literal("status"), level: z.enum(["info", "warning", "error"]), message: z.string() }),
  z.object({ v, type: z.literal("select"), src: z.string().min(1), dst: z.string().min(1) }),
  /** The path of one pair for the topology to draw (null clears it). */
  z.object({ v, type: z.literal("path"), path: pairPathSchema.nullable() }),
]);
export type HostMessage = z.infer<typeof hostMessageSchema>;

/** Webview -> host. */
export const webviewMessageSchema = z.discriminatedUnion("type", [
  z.object({ v, type: z.literal("ready"), view: viewKindSchema }),
  z.object({ v, type: z.literal("verify") }),
  z.object({ v, type: z.literal("probe-pair"), src: endpointSchema, dst: endpointSchema }),
  z.object({ v, type: z.literal("copy"), text: z.string().min(1).max(4096) }),
  z.object({ v, type: z.literal("open-report") }),
  z.object({ v, type: z.literal("rendered"), view: viewKindSchema, ms: z.number().nonnegative() }),
  /** Draw this pair's path in the topology (the matrix's "Show path" on a pair). */
  z.object({ v, type: z.literal("show-path"), pairId: z.string().min(1).max(512) }),
]);
export type WebviewMessage = z.infer<typeof webviewMessageSchema>;

export type ParseResult<T> = { success: true; data: T } | { success: false; error: { code: "ERR_INVALID_MESSAGE"; message: string } };

function parseWith<T>(schema: z.ZodType<T>, side: string, input: unknown): ParseResult<T> {
  const invalid = (message: string) => ({ success: false, error: { code: "ERR_INVALID_MESSAGE", message: `${side} message ${message}` } }) as const;
  if (typeof input === "object" && input !== null && "v" in input && input.v !== PROTOCOL_VERSION) {
    return invalid(`has protocol version ${JSON.stringify(input.v)}; this build speaks version ${PROTOCOL_VERSION}`);
  }
  const parsed = schema.safeParse(input);
  if (parsed.success) return { success: true, data: parsed.data };
  const issue = parsed.error.issues[0];
  const type = typeof input === "object" && input !== null && "type" in input ? JSON.stringify(input.type) : "(none)";
  return invalid(`of type ${type} is invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}`);
}

export function parseHostMessage(input: unknown): ParseResult<HostMessage> {
  return parseWith(hostMessageSchema, "host", input);
}

export function parseWebviewMessage(input: unknown): ParseResult<WebviewMessage> {
  return parseWith(webviewMessageSchema, "webview", input);
}
