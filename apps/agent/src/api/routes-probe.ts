import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import {
  buildProbePlan,
  DEFAULT_PROBE_OPTIONS,
  dialRequestSchema,
  probeOptionsSchema,
  type ProbeEndpoint,
  type ProbeInventory,
} from "@flatnet/core";
import { runProbe, type DialTransport } from "../probe/engine.ts";
import { readNodeFacts } from "../probe/node-state.ts";
import { agentStateSource } from "../probe/node-state.ts";
import { agentTransport, streamDial, type HttpEndpoint, type RelayDialBody } from "../probe/transport.ts";

// The probe endpoints of the agent API: relay a dial to a local pod, run a whole check, report node facts.

export interface ProbeRouteContext {
  /** This agent's node name. */
  node: string;
  /** The namespace the agent acts in (its node's), for `nft` and link reads. */
  netns: string;
  underlayDevice: string;
}

export interface ProbeRoute {
  method: "GET" | "POST";
  path: string;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

const endpointSchema = z.union([
  z.object({ socketPath: z.string().min(1) }),
  z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }),
]);

const relaySchema = z.object({
  src: z.object({ pod: z.string(), namespace: z.string().optional(), node: z.string(), ip: z.string(), port: z.number().int().min(1).max(65535) }),
  request: dialRequestSchema,
});

const runSchema = z.object({
  inventory: z.object({
    cluster: z.object({ name: z.string(), source: z.enum(["lab", "kubernetes", "fixture"]) }),
    nodes: z.array(z.object({ name: z.string(), ready: z.boolean().optional(), podCidrs: z.array(z.string()), nodeIps: z.array(z.string()) })),
    pods: z.array(
      z.object({
        name: z.string(),
        namespace: z.string().optional(),
        node: z.string(),
        ips: z.array(z.string()),
        ready: z.boolean().optional(),
        port: z.number().int().optional(),
      }),
    ),
  }),
  /** How to reach each node's agent for the fan-out; this agent's own node needs no entry. */
  agents: z.record(z.string(), endpointSchema).default({}),
  mode: z.enum(["all-pods", "node-pairs"]).default("all-pods"),
  families: z.array(z.enum(["IPv4", "IPv6"])).optional(),
  peersPerNode: z.number().int().min(1).max(1000).optional(),
  options: probeOptionsSchema.partial().default({}),
});

/** Probe routes for the agent's API server (`POST /v1/probe/dial`, `POST /v1/probe/run`, `GET /v1/probe/node-facts`). */
export function probeRoutes(context: ProbeRouteContext): ProbeRoute[] {
  const relayLocal = (src: ProbeEndpoint, body: RelayDialBody["request"]) =>
    streamDial({ host: src.ip, port: src.port }, "/v1/dial", body, Math.max(30_000, body.options.timeoutMs * 20));
  return [
    {
      method: "POST",
      path: "/v1/probe/dial",
      async handle(req, res) {
        const body = await readBody(req, res, relaySchema);
        if (body === undefined) return;
        if (body.src.node !== context.node) {
          return problem(res, 400, "ERR_WRONG_NODE", `pod ${body.src.pod} is on node ${body.src.node}; this agent serves node ${context.node}`);
        }
        await streamNdjson(res, relayLocal(body.src, body.request), 502, `the responder of ${body.src.pod} at ${body.src.ip}:${body.src.port}`);
      },
    },
    {
      method: "POST",
      path: "/v1/probe/run",
      async handle(req, res) {
        const body = await readBody(req, res, runSchema);
        if (body === undefined) return;
        const inventory = body.inventory as ProbeInventory;
        const planRequest: Parameters<typeof buildProbePlan>[1] = { mode: body.mode };
        if (body.families !== undefined) planRequest.families = body.families;
        if (body.peersPerNode !== undefined) planRequest.peersPerNode = body.peersPerNode;
        const plan = buildProbePlan(inventory, planRequest);
        const agents = new Map(Object.entries(body.agents) as [string, HttpEndpoint][]);
        const remote = agentTransport((node) => agents.get(node));
        // Our own pods are dialled directly; other nodes' pods through their agents.
        const transport: DialTransport = {
          dial: (src, request) => (src.node === context.node ? relayLocal(src, request) : remote.dial(src, request)),
        };
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        const controller = new AbortController();
        res.on("close", () => controller.abort());
        await runProbe({
          cluster: inventory.cluster,
          plan,
          options: { ...DEFAULT_PROBE_OPTIONS, ...body.options },
          transport,
          nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
          states: agentStateSource((node) => agents.get(node)),
          onEvent: (event) => {
            if (!res.writableEnded) res.write(`${JSON.stringify(event)}\n`);
          },
          signal: controller.signal,
        }).catch((error: Error) => {
          if (!res.writableEnded) res.write(`${JSON.stringify({ v: 1, type: "run-failed", runId: "", error: { code: "ERR_PROBE_RUN", message: error.message } })}\n`);
        });
        res.end();
      },
    },
    {
      method: "GET",
      path: "/v1/probe/node-facts",
      async handle(_req, res) {
        const facts = await readNodeFacts(context.netns, context.underlayDevice);
        const text = JSON.stringify(facts);
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
      },
    },
  ];
}

/** Dispatch a request to a probe route; false when no route matches (the caller answers 404). */
export async function handleProbeRequest(routes: readonly ProbeRoute[], req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = (req.url ?? "/").split("?")[0];
  const route = routes.find((r) => r.method === req.method && r.path === path);
  if (route === undefined) return false;
  try {
    await route.handle(req, res);
  } catch (error) {
    problem(res, 500, "ERR_PROBE", (error as Error).message);
  }
  return true;
}

async function streamNdjson(res: ServerResponse, lines: AsyncIterable<unknown>, failStatus: number, what: string): Promise<void> {
  const iterator = lines[Symbol.asyncIterator]();
  let first: IteratorResult<unknown>;
  try {
    first = await iterator.next();
  } catch (error) {
    return problem(res, failStatus, "ERR_RESPONDER_UNREACHABLE", `${what} did not answer: ${(error as Error).message}`);
  }
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  let current = first;
  try {
    while (!current.done) {
      res.write(`${JSON.stringify(current.value)}\n`);
      current = await iterator.next();
    }
  } catch {
    // The caller sees a stream that ends early and marks the missing targets as control-path failures.
  }
  res.end();
}

async function readBody<T>(req: IncomingMessage, res: ServerResponse, schema: z.ZodType<T>): Promise<T | undefined> {
  let text = "";
  req.setEncoding("utf8");
  for await (const chunk of req as AsyncIterable<string>) {
    text += chunk;
    if (text.length > 32 * 1024 * 1024) {
      problem(res, 413, "ERR_BODY_TOO_LARGE", "request body exceeds 32 MiB");
      return undefined;
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    problem(res, 400, "ERR_INVALID_JSON", "request body is not JSON");
    return undefined;
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    problem(res, 400, "ERR_INVALID_REQUEST", `request body is invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}`);
    return undefined;
  }
  return parsed.data;
}

function problem(res: ServerResponse, status: number, code: string, detail: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify({ type: `urn:flatnet:error:${code}`, title: code, status, detail });
  res.writeHead(status, { "content-type": "application/problem+json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
