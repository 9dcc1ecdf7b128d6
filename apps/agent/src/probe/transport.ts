import { Agent, request, type IncomingMessage } from "node:http";
import { dialResultSchema, type DialRequest, type DialResult, type ProbeEndpoint } from "@flatnet/core";
import { PROBE_TOKEN_HEADER } from "./dial-policy.ts";
import type { DialTransport } from "./engine.ts";

/** Where an HTTP API listens: a unix socket (lab, agents) or a TCP address (a pod's responder from its node). */
export type HttpEndpoint = { socketPath: string } | { host: string; port: number };

/** Body of `POST /v1/probe/dial` on an agent: dial from `src`, one of this agent's pods. */
export interface RelayDialBody {
  src: ProbeEndpoint;
  request: DialRequest;
}

/**
 * Dial by talking to each source pod's responder: `POST /v1/dial` on the endpoint `locate` gives for the
 * source (its control socket in the lab, or its pod IP from inside its node).
 */
export function responderTransport(locate: (src: ProbeEndpoint) => HttpEndpoint | undefined, idleTimeoutMs = 30_000, token?: string): DialTransport {
  return {
    dial(src, dialRequest) {
      const endpoint = locate(src);
      if (endpoint === undefined) return failing(`no control endpoint known for ${src.pod} on ${src.node}`);
      return streamDial(endpoint, "/v1/dial", dialRequest, idleTimeout(dialRequest, idleTimeoutMs), token);
    },
  };
}

/**
 * Dial through the source node's agent (`POST /v1/probe/dial`), which relays to its local pod's responder:
 * the probe leaves from the pod's IP, and the client needs to reach only agents. The probe token (if any) is passed
 * to the agent, which presents it to the pod.
 */
export function agentTransport(locateAgent: (node: string) => HttpEndpoint | undefined, idleTimeoutMs = 30_000, token?: string): DialTransport {
  return {
    dial(src, dialRequest) {
      const endpoint = locateAgent(src.node);
      if (endpoint === undefined) return failing(`no agent endpoint known for node ${src.node}`);
      const body: RelayDialBody = { src, request: dialRequest };
      return streamDial(endpoint, "/v1/probe/dial", body, idleTimeout(dialRequest, idleTimeoutMs), token);
    },
  };
}

// Results stream per target; silence longer than every check's timeouts together means the control path is gone.
function idleTimeout(dialRequest: DialRequest, floor: number): number {
  const o = dialRequest.options;
  return Math.max(floor, o.timeoutMs * (o.tcpCount + o.udpCount + 4) * 2);
}

async function* failing(message: string): AsyncGenerator<DialResult> {
  throw new Error(message);
}

const keepAlive = new Agent({ keepAlive: false, maxSockets: Infinity });

/** POST a JSON body (with the probe token, when given) and yield the NDJSON lines of the answer, validated as DialResults. */
export async function* streamDial(endpoint: HttpEndpoint, path: string, body: unknown, idleMs: number, token?: string): AsyncGenerator<DialResult> {
  const response = await postJson(endpoint, path, body, idleMs, token === undefined ? {} : { [PROBE_TOKEN_HEADER]: token });
  if ((response.statusCode ?? 0) !== 200) {
    const text = await readAll(response);
    throw new Error(`${describeEndpoint(endpoint)}${path} answered HTTP ${response.statusCode}: ${problemDetail(text)}`);
  }
  yield* ndjsonLines(response, (value) => dialResultSchema.parse(value));
}

/** POST JSON and resolve with the response head; the socket times out after `idleMs` of silence. */
export function postJson(endpoint: HttpEndpoint, path: string, body: unknown, idleMs: number, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...endpoint,
        agent: keepAlive,
        path,
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload), accept: "application/x-ndjson" },
        timeout: idleMs,
      },
      (res) => resolve(res),
    );
    req.on("timeout", () => req.destroy(new Error(`no data from ${describeEndpoint(endpoint)}${path} for ${idleMs} ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Yield each non-empty line of a response body, parsed as JSON and checked by `validate`. */
export async function* ndjsonLines<T>(response: IncomingMessage, validate: (value: unknown) => T): AsyncGenerator<T> {
  let rest = "";
  response.setEncoding("utf8");
  for await (const chunk of response as AsyncIterable<string>) {
    rest += chunk;
    let newline: number;
    while ((newline = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, newline).trim();
      rest = rest.slice(newline + 1);
      if (line !== "") yield validate(JSON.parse(line));
    }
  }
  if (!response.complete) throw new Error("the stream was cut before its end");
  if (rest.trim() !== "") yield validate(JSON.parse(rest));
}

export async function readAll(response: IncomingMessage): Promise<string> {
  let text = "";
  response.setEncoding("utf8");
  for await (const chunk of response as AsyncIterable<string>) text += chunk;
  return text;
}

function problemDetail(text: string): string {
  try {
    const body = JSON.parse(text) as { detail?: string; title?: string };
    return body.detail ?? body.title ?? text.slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}

export function describeEndpoint(endpoint: HttpEndpoint): string {
  return "socketPath" in endpoint ? `unix:${endpoint.socketPath}:` : `http://${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
}
