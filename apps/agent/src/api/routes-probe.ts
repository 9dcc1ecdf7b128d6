import { isIP } from "node:net";
import { dirname, join } from "node:path";
import { z } from "zod";
import {
  buildProbePlan,
  DEFAULT_PROBE_OPTIONS,
  dialRequestSchema,
  evidenceRequestSchema,
  probeOptionsSchema,
  type DialRequest,
  type DialResult,
  type ProbeEndpoint,
  type ProbeEvent,
  type ProbeInventory,
} from "@flatnet/core";
import { runProbe, type DialTransport } from "../probe/engine.ts";
import { agentStateSource, readNodeFacts } from "../probe/node-state.ts";
import { PROBE_TOKEN_ENV, PROBE_TOKEN_HEADER } from "../probe/dial-policy.ts";
import { nodeProbeSocket } from "../probe/node-responder.ts";
import { gatherEvidence } from "../linux/evidence.ts";
import type { HttpEndpoint } from "../http/client.ts";
import { agentTransport, streamDial } from "../probe/transport.ts";
import type { AgentContext, RouteModule } from "./context.ts";
import { ApiProblem, type ApiRequest, type ApiRoute } from "./server.ts";

// The probe endpoints of the agent API: relay a dial to one of this node's pods, run a whole check with
// fan-out to the other agents, and report the node facts diagnosis needs (firewall, underlay MTU and MAC).

/** What the probe routes need to know about the agent they run in. */
export interface ProbeRouteSelf {
  name: string;
  netns: string;
  underlayDevice: string;
  /** This agent's API socket: the other agents a run may fan out to are its siblings, `<dir>/<node>.sock`. */
  socketPath: string;
}

// A node name as Kubernetes allows it (RFC 1123 subdomain): never a path separator.
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const endpointSchema = z.union([
  z.object({ socketPath: z.string().min(1) }),
  z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }),
]);

const relaySchema = z.object({
  src: z.object({ pod: z.string(), namespace: z.string().optional(), kind: z.enum(["pod", "node"]).optional(), node: z.string(), ip: z.string().refine((ip) => isIP(ip) !== 0, "must be an IP address"), port: z.number().int().min(1).max(65535) }),
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

/** The probe route module for `src/api/modules.ts`. */
export const probeRouteModule: RouteModule = (context: AgentContext) =>
  probeRoutes(() => {
    const self = context.self();
    return self === undefined ? undefined : { name: self.name, netns: self.netns, underlayDevice: self.underlayDevice, socketPath: context.socketPath };
  });

/**
 * The agents a run may fan out to: only sibling sockets of this agent's own (`<dir>/<node>.sock`, as the lab lays
 * them out), never an arbitrary path or host (issue 14.10). Throws a 400 problem naming the entry and the rule.
 */
export function checkRunAgents(me: ProbeRouteSelf, agents: Record<string, z.infer<typeof endpointSchema>>): Map<string, HttpEndpoint> {
  const out = new Map<string, HttpEndpoint>();
  for (const [node, endpoint] of Object.entries(agents)) {
    const expected = NODE_NAME.test(node) ? join(dirname(me.socketPath), `${node}.sock`) : undefined;
    if (expected === undefined || !("socketPath" in endpoint) || endpoint.socketPath !== expected) {
      throw new ApiProblem(
        400,
        "Bad Request",
        `agents[${JSON.stringify(node)}] is ${JSON.stringify(endpoint)}; a run fans out only to this agent's sibling sockets, ` +
          (expected === undefined ? `and ${JSON.stringify(node)} is not a node name` : `here {"socketPath":${JSON.stringify(expected)}}`),
      );
    }
    out.set(node, { socketPath: expected });
  }
  return out;
}

/**
 * The agent's read-only evidence socket next to its API socket: /run/flatnet/agent.sock ->
 * /run/flatnet/agent-evidence.sock. It serves `POST /v1/evidence` only, to any local reader (the probe responder).
 */
export function evidenceSocketPath(apiSocket: string): string {
  return `${apiSocket.endsWith(".sock") ? apiSocket.slice(0, -".sock".length) : apiSocket}-evidence.sock`;
}

/** `POST /v1/probe/dial`, `POST /v1/probe/run` (NDJSON streams), `GET /v1/probe/node-facts` and `POST /v1/evidence`. */
export function probeRoutes(self: () => ProbeRouteSelf | undefined): ApiRoute[] {
  const requireSelf = (): ProbeRouteSelf => {
    const s = self();
    if (s === undefined) throw new ApiProblem(503, "Service Unavailable", "the agent has not registered its node yet");
    return s;
  };
  // The probe token the caller presented (the orchestrator's), else this agent's own: pods dial only with it.
  const tokenOf = (request: ApiRequest): string | undefined => {
    const header = request.raw.headers[PROBE_TOKEN_HEADER];
    return typeof header === "string" ? header : process.env[PROBE_TOKEN_ENV];
  };
  // The node's own responder dials only for its control socket; a pod's, over TCP with the token.
  const relayLocal = (src: ProbeEndpoint, request: DialRequest, token: string | undefined): AsyncGenerator<DialResult> =>
    streamDial(
      src.kind === "node" ? { socketPath: nodeProbeSocket(requireSelf().socketPath) } : { host: src.ip, port: src.port },
      "/v1/dial",
      request,
      Math.max(30_000, request.options.timeoutMs * 20),
      token,
    );

  return [
    {
      method: "POST",
      path: "/v1/probe/dial",
      async handler(request) {
        const me = requireSelf();
        const body = await parseBody(request, relaySchema);
        if (body.src.node !== me.name) {
          throw new ApiProblem(400, "Bad Request", `pod ${body.src.pod} is on node ${body.src.node}; this agent serves node ${me.name}`);
        }
        const results = relayLocal(body.src, body.request, tokenOf(request));
        // The first result (or the failure to reach the responder) decides the status before streaming starts.
        let first: IteratorResult<DialResult>;
        try {
          first = await results.next();
        } catch (error) {
          throw new ApiProblem(502, "Bad Gateway", `the responder of ${body.src.pod} at ${body.src.ip}:${body.src.port} did not answer: ${(error as Error).message}`);
        }
        return { stream: ndjson(first, results) };
      },
    },
    {
      method: "POST",
      path: "/v1/probe/run",
      async handler(request) {
        const me = requireSelf();
        const body = await parseBody(request, runSchema);
        const inventory = body.inventory as ProbeInventory;
        const { mode, families, peersPerNode } = body;
        const plan = buildProbePlan(inventory, { mode, ...(families && { families }), ...(peersPerNode !== undefined && { peersPerNode }) });
        const agents = checkRunAgents(me, body.agents);
        const token = tokenOf(request);
        const remote = agentTransport((node) => agents.get(node), undefined, token);
        // This node's pods are dialled directly; other nodes' pods through their agents.
        const transport: DialTransport = {
          dial: (src, dial) => (src.node === me.name ? relayLocal(src, dial, token) : remote.dial(src, dial)),
        };
        const controller = new AbortController();
        request.raw.socket.once("close", () => controller.abort());
        const queue = new EventQueue();
        runProbe({
          cluster: inventory.cluster,
          plan,
          options: { ...DEFAULT_PROBE_OPTIONS, ...body.options },
          transport,
          nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
          states: agentStateSource((node) => agents.get(node)),
          onEvent: (event) => queue.push(event),
          signal: controller.signal,
        }).then(
          () => queue.end(),
          (error: Error) => {
            queue.push({ v: 1, type: "run-failed", runId: "", error: { code: "ERR_PROBE_RUN", message: error.message } });
            queue.end();
          },
        );
        return { stream: queue.lines() };
      },
    },
    {
      method: "GET",
      path: "/v1/probe/node-facts",
      async handler() {
        const me = requireSelf();
        return { body: await readNodeFacts(me.netns, me.underlayDevice) };
      },
    },
    {
      // Read-only: the path tracer's evidence of this node, answering the route queries of the body.
      method: "POST",
      path: "/v1/evidence",
      async handler(request) {
        const me = requireSelf();
        const body = await parseBody(request, evidenceRequestSchema);
        return { body: await gatherEvidence(me.netns, body.lookups, { node: me.name }) };
      },
    },
  ];
}

async function parseBody<T>(request: ApiRequest, schema: z.ZodType<T>): Promise<T> {
  const parsed = schema.safeParse(await request.json());
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiProblem(400, "Bad Request", `request body is invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}`);
  }
  return parsed.data;
}

async function* ndjson(first: IteratorResult<DialResult>, rest: AsyncGenerator<DialResult>): AsyncGenerator<string> {
  if (first.done) return;
  yield `${JSON.stringify(first.value)}\n`;
  try {
    for await (const result of rest) yield `${JSON.stringify(result)}\n`;
  } catch {
    // The stream ends early; the caller marks the targets without a result as control-path failures.
  }
}

/** Events pushed by the engine, read as NDJSON lines by the response. */
class EventQueue {
  private readonly items: string[] = [];
  private done = false;
  private wake: (() => void) | undefined;

  push(event: ProbeEvent): void {
    this.items.push(`${JSON.stringify(event)}\n`);
    this.wake?.();
  }

  end(): void {
    this.done = true;
    this.wake?.();
  }

  async *lines(): AsyncGenerator<string> {
    for (;;) {
      if (this.items.length > 0) {
        // Batch what is queued into one write: thousands of pair results arrive within milliseconds.
        yield this.items.splice(0).join("");
        continue;
      }
      if (this.done) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
