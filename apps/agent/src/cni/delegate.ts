// The plugin's fast path: when the netconf names the agent's unix socket (`agentSocket`), the plugin forwards the call
// (CNI_* env and stdin) to the agent, which runs the same plugin logic warm (modules loaded, IPAM store open), and
// prints the agent's answer. This module is all the fast path loads: a hand-written HTTP/1.1 request over Bun.connect
// (Bun's fetch over a unix socket cost ~11 ms, Bun's node:net ~4 ms of start-up). Nothing here may import zod or the
// plugin, and nothing at the top level may load a node: module the fast path does not use.

/** What the agent answers for one CNI call: exactly what the plugin process would print and exit with. */
export interface DelegatedResponse {
  exitCode: number;
  stdout: string;
}

/** The agent route that runs a CNI call (apps/agent/src/api/routes-cni.ts). */
export const CNI_ROUTE = "/v1/cni";

/**
 * The answer the native client asks for (`Accept`): the body is the plugin's stdout as is and the exit code is in
 * EXIT_CODE_HEADER, so a few hundred lines of C need no JSON decoder. The default answer is JSON {exitCode, stdout}.
 */
export const RAW_ANSWER = "application/x-flatnet-cni-raw";
export const EXIT_CODE_HEADER = "x-cni-exit-code";

export function wantsRaw(accept: string | undefined): boolean {
  return accept !== undefined && accept.toLowerCase().includes(RAW_ANSWER);
}

/** Outcome of a delegation attempt: the agent's answer, or why the plugin must do the work itself (or give up). */
export type DelegateOutcome =
  | { kind: "answered"; response: DelegatedResponse }
  /** Nothing was done by the agent (not listening, no such route, refused the request): run the call in-process. */
  | { kind: "unavailable"; reason: string }
  /** The request reached the agent, which then went away without an answer: the call may be half done. */
  | { kind: "lost"; reason: string };

/** The agent socket the netconf names, or undefined (no fast path). A cheap look: JSON.parse, no schema. */
export function agentSocketOf(stdin: string): string | undefined {
  try {
    const conf = JSON.parse(stdin) as { agentSocket?: unknown } | null;
    const socket = conf?.agentSocket;
    return typeof socket === "string" && socket.startsWith("/") ? socket : undefined;
  } catch {
    return undefined; // not JSON: the in-process path reports it properly (code 6)
  }
}

/** Only the CNI_* variables travel: the agent never sees the runtime's other environment. */
export function cniEnvOf(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([key, value]) => key.startsWith("CNI_") && value !== undefined)) as Record<string, string>;
}

/** A plugin's answer is a CNI result or error of a few KiB; a longer one is not an answer (the native client's limit too). */
export const MAX_ANSWER_BYTES = 1 << 20;

/** The whole exchange's deadline: FLATNET_CNI_TIMEOUT_MS from the runtime's environment, else 120 s (both clients). */
export function delegateTimeoutMs(env: Record<string, string | undefined>): number {
  const ms = Number(env.FLATNET_CNI_TIMEOUT_MS);
  return Number.isInteger(ms) && ms > 0 ? ms : 120_000;
}

/**
 * The identity of a network namespace file as this process sees it (issue 11: the worker may live in another mount or
 * PID namespace, where the same path names something else). The worker acts only when its own stat agrees.
 */
export interface NetnsIdentity {
  dev: number;
  ino: number;
}

/** stat(2) of `path` (following the /proc/PID/ns/net magic link), or undefined when it cannot be read. */
export async function netnsIdentityOf(path: string | undefined): Promise<NetnsIdentity | undefined> {
  if (path === undefined || path === "") return undefined;
  try {
    const bun = (globalThis as { Bun?: { file(path: string): { stat(): Promise<NetnsIdentity> } } }).Bun;
    // Bun.file().stat(), not node:fs: node:fs costs the fast path milliseconds of start-up.
    const stat = bun !== undefined ? await bun.file(path).stat() : (await import("node:fs")).statSync(path);
    return { dev: Number(stat.dev), ino: Number(stat.ino) };
  } catch {
    return undefined; // the worker then declines, and the in-process plugin reports the path properly
  }
}

/**
 * Sends one CNI call to the agent at `socketPath`: POST /v1/cni with {env, stdin, netns}, answer {exitCode, stdout}.
 * A refused or missing socket, or an agent without the route, is "unavailable" (the caller falls back to in-process
 * work); a connection that breaks after the request was sent is "lost".
 */
export function delegate(socketPath: string, env: Record<string, string>, stdin: string, timeoutMs = 120_000, netns?: NetnsIdentity): Promise<DelegateOutcome> {
  return new Promise((resolve) => {
    const body = Buffer.from(JSON.stringify(netns === undefined ? { env, stdin } : { env, stdin, netns }), "utf8");
    const head = `POST ${CNI_ROUTE} HTTP/1.1\r\nHost: flatnet-agent\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const request = Buffer.concat([Buffer.from(head, "latin1"), body]);
    const chunks: Uint8Array[] = [];
    let received = 0;
    let sent = false;
    let settled = false;
    let close = () => {};
    const finish = (outcome: DelegateOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      close();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: sent ? "lost" : "unavailable", reason: `the agent at ${socketPath} did not answer within ${timeoutMs} ms` }), timeoutMs);
    const events: TransportEvents = {
      connected: () => (sent = true),
      data: (chunk) => {
        received += chunk.length;
        if (received > MAX_ANSWER_BYTES) finish({ kind: "lost", reason: `the agent at ${socketPath} sent an answer over ${MAX_ANSWER_BYTES} bytes` });
        else chunks.push(chunk);
      },
      ended: () => finish(parseResponse(Buffer.concat(chunks), socketPath)),
      failed: (code) => finish({ kind: sent ? "lost" : "unavailable", reason: `agent socket ${socketPath}: ${code}` }),
    };
    const bun = (globalThis as { Bun?: BunConnector }).Bun;
    close = bun !== undefined ? connectWithBun(bun, socketPath, request, events) : connectWithNode(socketPath, request, events);
  });
}

interface TransportEvents {
  /** The request is being written: from here on the agent may act on it. */
  connected(): void;
  data(chunk: Uint8Array): void;
  /** The agent closed the connection (after its answer, or without one). */
  ended(): void;
  failed(code: string): void;
}

/** The slice of Bun's API the fast path uses (Bun.connect: ~4 ms cheaper at start-up than Bun's node:net). */
interface BunConnector {
  connect(options: {
    unix: string;
    socket: {
      open(socket: BunSocket): void;
      data(socket: BunSocket, data: Uint8Array): void;
      close(socket: BunSocket): void;
      error(socket: BunSocket, error: Error): void;
      drain?(socket: BunSocket): void;
    };
  }): Promise<BunSocket>;
}
interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
}

function connectWithBun(bun: BunConnector, socketPath: string, request: Buffer, events: TransportEvents): () => void {
  let socket: BunSocket | undefined;
  let offset = 0;
  const flush = (s: BunSocket) => {
    while (offset < request.length) {
      const wrote = s.write(request.subarray(offset));
      if (wrote <= 0) return; // the rest goes out on drain
      offset += wrote;
    }
  };
  bun
    .connect({
      unix: socketPath,
      socket: {
        open: (s) => {
          socket = s;
          events.connected();
          flush(s);
        },
        drain: (s) => flush(s),
        data: (_s, data) => events.data(data),
        close: () => events.ended(),
        error: (_s, error) => events.failed((error as NodeJS.ErrnoException).code ?? error.message),
      },
    })
    .catch((error: NodeJS.ErrnoException) => events.failed(error.code ?? error.message));
  return () => socket?.end();
}

function connectWithNode(socketPath: string, request: Buffer, events: TransportEvents): () => void {
  let socket: import("node:net").Socket | undefined;
  let closed = false;
  // Loaded here, not at the top: under Bun (the plugin binary) node:net costs milliseconds of start-up.
  void import("node:net").then(({ createConnection }) => {
    if (closed) return;
    socket = createConnection({ path: socketPath });
    socket.on("connect", () => {
      events.connected();
      socket?.write(request);
    });
    socket.on("data", (chunk: Buffer) => events.data(chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => events.failed(error.code ?? error.message));
    socket.on("end", () => events.ended());
    socket.on("close", () => events.ended());
  });
  return () => {
    closed = true;
    socket?.destroy();
  };
}

/** Parses the agent's HTTP/1.1 answer (Connection: close; Content-Length or chunked). */
export function parseResponse(raw: Buffer, socketPath: string): DelegateOutcome {
  const text = raw.toString("utf8");
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) return { kind: "lost", reason: `the agent at ${socketPath} closed the connection without an answer` };
  const headers = text.slice(0, split).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(headers[0] ?? "")?.[1];
  let payload = text.slice(split + 4);
  if (headers.some((h) => /^transfer-encoding:\s*chunked/i.test(h))) payload = dechunk(payload);
  if (status !== "200") {
    // 404 (an agent without the CNI route), 400/503: the agent did nothing; the plugin does the work itself.
    return { kind: "unavailable", reason: `the agent at ${socketPath} answered HTTP ${status ?? "?"}: ${payload.trim().slice(0, 200)}` };
  }
  try {
    const response = JSON.parse(payload) as DelegatedResponse;
    if (typeof response.exitCode !== "number" || typeof response.stdout !== "string") throw new Error("not {exitCode, stdout}");
    return { kind: "answered", response };
  } catch (error) {
    return { kind: "lost", reason: `the agent at ${socketPath} sent an unreadable answer (${(error as Error).message})` };
  }
}

function dechunk(body: string): string {
  let out = "";
  let at = 0;
  for (;;) {
    const eol = body.indexOf("\r\n", at);
    if (eol < 0) return out;
    const size = Number.parseInt(body.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/**
 * Where the agent's CNI worker listens, next to the agent's API socket: /run/flatnet/node1.sock ->
 * /run/flatnet/node1-cni.sock. The conflist's `agentSocket` names this path (cni/worker.ts explains the worker).
 */
export function cniWorkerSocket(apiSocket: string): string {
  return `${apiSocket.endsWith(".sock") ? apiSocket.slice(0, -".sock".length) : apiSocket}-cni.sock`;
}
