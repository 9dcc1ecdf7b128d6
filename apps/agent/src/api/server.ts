import { existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { connect } from "node:net";
import { dirname } from "node:path";
import { Readable, pipeline } from "node:stream";
import { closeServer, type ConnectionLimits, guardConnections, listen } from "../http/connection-guard.ts";
import { sendProblem } from "../http/problem.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE" | "PATCH";

export interface ApiRequest {
  method: HttpMethod;
  /** The path without the query string. */
  path: string;
  query: URLSearchParams;
  /** `:name` segments of the route's path. */
  params: Record<string, string>;
  /** The body parsed as JSON (undefined when empty); a malformed body answers 400 before the handler runs. */
  json(): Promise<unknown>;
  raw: IncomingMessage;
}

export interface ApiResponse {
  status?: number;
  /** Sent as JSON unless `text` is given. */
  body?: unknown;
  /** Sent as is, with `contentType` (default text/plain). */
  text?: string;
  /** Streamed chunk by chunk (NDJSON), with `contentType` (default application/x-ndjson); ends with the iterable. */
  stream?: AsyncIterable<string>;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface ApiRoute {
  method: HttpMethod;
  /** "/v1/node", or with parameters: "/v1/probes/:id". */
  path: string;
  handler(request: ApiRequest): ApiResponse | Promise<ApiResponse>;
}

/** An error a handler throws to answer with an RFC 9457 problem (application/problem+json). */
export class ApiProblem extends Error {
  override readonly name = "ApiProblem";
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail ?? title);
  }
}

export interface ApiLogger {
  warn(fields: object, message: string): void;
  debug?(fields: object, message: string): void;
}

export interface ApiServerOptions {
  /** A unix socket path: reachable from any namespace that shares the filesystem, adding nothing to any network. */
  socketPath: string;
  /** Every route of every module, flattened; the first match wins. */
  routes: ApiRoute[];
  logger?: ApiLogger;
  /** Largest accepted request body. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Default UNIX_API_LIMITS. */
  limits?: ConnectionLimits;
  /** Who may connect: default 0o660 (owner and group). A read-only API (evidence) may be 0o666. */
  socketMode?: number;
}

/** A unix API client has 10 s to send a request's headers (after connecting or an answer); 1024 connections at most. */
export const UNIX_API_LIMITS: ConnectionLimits = { waitMs: 10_000, maxConnections: 1024 };

export interface ApiServer {
  readonly socketPath: string;
  listen(): Promise<void>;
  close(): Promise<void>;
}

interface CompiledRoute {
  route: ApiRoute;
  segments: string[];
}

/** An HTTP server on a unix socket that answers JSON, and problem+json for every error. */
export function createApiServer(options: ApiServerOptions): ApiServer {
  const server: Server = createServer(createRequestListener(options));
  guardConnections(server, options.limits ?? UNIX_API_LIMITS);

  return {
    socketPath: options.socketPath,
    async listen() {
      mkdirSync(dirname(options.socketPath), { recursive: true });
      // A socket left by a previous agent that crashed; anything that is not a socket is never removed.
      if (existsSync(options.socketPath)) {
        if (!lstatSync(options.socketPath).isSocket()) {
          throw new Error(`API socket path "${options.socketPath}" exists and is not a socket`);
        }
        if (await answers(options.socketPath)) {
          throw new Error(`API socket "${options.socketPath}" is served by a running process (another agent for this node?)`);
        }
        unlinkSync(options.socketPath);
      }
      // The API can attach and detach pods (POST /v1/cni): owner and group only, from the moment the socket exists.
      await listen(server, { path: options.socketPath }, options.socketMode ?? 0o660);
    },
    close: () => closeServer(server),
  };
}

/**
 * The request handler of an API server: routes matched by path, then method (405 with Allow), 404 otherwise,
 * JSON/text/NDJSON answers, problem+json for every error. Shared by the unix socket API and the TCP metrics listener.
 */
export function createRequestListener(
  options: Pick<ApiServerOptions, "routes" | "logger" | "bodyLimitBytes">,
): (req: IncomingMessage, res: ServerResponse) => void {
  const compiled: CompiledRoute[] = options.routes.map((route) => {
    if (!route.path.startsWith("/")) throw new Error(`API route path "${route.path}" must start with "/"`);
    return { route, segments: route.path.split("/").slice(1) };
  });
  const limit = options.bodyLimitBytes ?? 1 << 20;
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof ApiProblem && !res.headersSent) return sendProblem(res, error.status, error.title, error.detail, error.extra);
      options.logger?.warn({ err: (error as Error).message, path: req.url }, "API handler failed");
      if (!res.headersSent) sendProblem(res, 500, "Internal Server Error", "the agent could not answer this request; see its log");
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://agent");
    const method = (req.method ?? "GET").toUpperCase();
    const parts = url.pathname.split("/").slice(1);
    let pathMatched = false;
    for (const { route, segments } of compiled) {
      const params = match(segments, parts);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      let body: Promise<unknown> | undefined; // read once, however often a handler asks
      const request: ApiRequest = {
        method: method as HttpMethod,
        path: url.pathname,
        query: url.searchParams,
        params,
        raw: req,
        json: () => (body ??= readJson(req, limit)),
      };
      try {
        send(res, await route.handler(request));
      } catch (error) {
        if (error instanceof ApiProblem) sendProblem(res, error.status, error.title, error.detail, error.extra);
        else throw error;
      }
      return;
    }
    if (pathMatched) {
      const allowed = [...new Set(compiled.filter((c) => match(c.segments, parts) !== undefined).map((c) => c.route.method))].join(", ");
      res.setHeader("allow", allowed);
      sendProblem(res, 405, "Method Not Allowed", `${method} is not allowed on ${url.pathname}; allowed: ${allowed}`);
      return;
    }
    sendProblem(res, 404, "Not Found", `no route for ${method} ${url.pathname}`);
  }

  return listener;
}

/** Whether something accepts connections on the unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function match(segments: string[], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if (segment.startsWith(":")) {
      if (part === "") return undefined;
      params[segment.slice(1)] = decodeSegment(part);
    } else if (segment !== part) return undefined;
  }
  return params;
}

function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ApiProblem(400, "Bad Request", `path segment ${JSON.stringify(part)} is not valid percent-encoding`);
  }
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new ApiProblem(413, "Payload Too Large", `request body exceeds ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiProblem(400, "Bad Request", `request body is not JSON: ${(error as Error).message}`);
  }
}

function send(res: ServerResponse, response: ApiResponse): void {
  for (const [name, value] of Object.entries(response.headers ?? {})) res.setHeader(name, value);
  res.statusCode = response.status ?? 200;
  if (response.stream !== undefined) {
    res.setHeader("content-type", response.contentType ?? "application/x-ndjson");
    // pipeline destroys the response if the stream fails, so the client sees a cut stream, not a hang.
    pipeline(Readable.from(response.stream), res, () => undefined);
    return;
  }
  if (response.text !== undefined) {
    res.setHeader("content-type", response.contentType ?? "text/plain; charset=utf-8");
    res.end(response.text);
    return;
  }
  if (response.body === undefined && res.statusCode === 204) {
    res.end();
    return;
  }
  res.setHeader("content-type", response.contentType ?? "application/json");
  res.end(JSON.stringify(response.body ?? null) + "\n");
}
