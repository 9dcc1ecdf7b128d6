import { Agent, request, type IncomingMessage } from "node:http";

// The one HTTP client of the agent's APIs: an agent's (unix socket or TCP) and a probe responder's.

/** Where an HTTP API listens: a unix socket (lab, agents) or a TCP address (a pod's responder from its node). */
export type HttpEndpoint = { socketPath: string } | { host: string; port: number };

export interface JsonResponse {
  status: number;
  /** The body parsed as JSON; the text when it is not JSON; undefined when empty. */
  body: unknown;
}

/** GET `path` as JSON; rejects when the endpoint does not answer within the timeout. */
export function getJson(endpoint: HttpEndpoint, path: string, timeoutMs = 2_000): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ ...endpoint, path, method: "GET", timeout: timeoutMs, headers: { accept: "application/json" } }, (res) => {
      readAll(res).then((text) => resolve({ status: res.statusCode ?? 0, body: parseBody(text) }), reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${describeEndpoint(endpoint)}${path} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** Like getJson, but any failure becomes `undefined` (an agent that is down is a normal state for the lab). */
export async function tryGetJson(endpoint: HttpEndpoint, path: string, timeoutMs?: number): Promise<JsonResponse | undefined> {
  try {
    return await getJson(endpoint, path, timeoutMs);
  } catch {
    return undefined;
  }
}

/** The JSON body of a `200 OK` answer to GET `path`; rejects naming the path on any other status or a body that is not JSON. */
export async function getOkJson(endpoint: HttpEndpoint, path: string, timeoutMs: number): Promise<unknown> {
  const { status, body } = await getJson(endpoint, path, timeoutMs);
  if (status !== 200) throw new Error(`${path} answered HTTP ${status}`);
  if (typeof body === "string" || body === undefined) throw new Error(`${path} did not answer JSON`);
  return body;
}

/** Whether GET /healthz answers 200 within the timeout. */
export async function isHealthy(endpoint: HttpEndpoint, timeoutMs = 1_000): Promise<boolean> {
  return (await tryGetJson(endpoint, "/healthz", timeoutMs))?.status === 200;
}

const noKeepAlive = new Agent({ keepAlive: false, maxSockets: Infinity });

/** POST JSON and resolve with the response head; the socket times out after `idleMs` of silence. */
export function postJson(endpoint: HttpEndpoint, path: string, body: unknown, idleMs: number, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...endpoint,
        agent: noKeepAlive,
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

/** The first of `fields` a JSON body has (a problem's detail, else its title), else the start of the text. */
export function problemDetail(text: string, fields: readonly string[] = ["detail", "title"]): string {
  try {
    const body = JSON.parse(text) as Record<string, string | undefined | null>;
    return fields.map((field) => body[field]).find((value) => value !== undefined && value !== null) ?? text.slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}

export function describeEndpoint(endpoint: HttpEndpoint): string {
  return "socketPath" in endpoint ? `unix:${endpoint.socketPath}:` : `http://${urlHost(endpoint.host)}:${endpoint.port}`;
}

/** A host as it stands in a URL or before a port: an IPv6 address (any colon) in brackets (RFC 3986 3.2.2). */
export function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
