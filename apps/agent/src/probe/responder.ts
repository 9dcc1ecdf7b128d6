import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { unlink } from "node:fs/promises";
import {
  dialRequestSchema,
  PROBE_PROTOCOL_VERSION,
  probeAddressFamily,
  type EchoReply,
  type ResponderIdentity,
} from "@flatnet/core";
import { closeServer, type ConnectionLimits, guardConnections, listen } from "../http/connection-guard.ts";
import { urlHost } from "../http/client.ts";
import { sendProblem } from "../http/problem.ts";
import { authorizeDial, checkDialTargets, type DialPolicy, PROBE_TOKEN_HEADER } from "./dial-policy.ts";
import { dialTargets } from "./dialer.ts";

export interface ResponderOptions {
  identity: ResponderIdentity;
  /** TCP (HTTP) and UDP port on every address of the pod. */
  port: number;
  /** Also serve the HTTP API on this unix socket (the lab's control path from the root namespace). */
  controlSocket?: string;
  /**
   * TCP listens on these addresses only (a node's responder: its underlay IPs, not every address of the host);
   * default every address (`::`, falling back to `0.0.0.0`). UDP always binds per `identity.podIps`.
   */
  listenAddresses?: string[];
  /**
   * Who may make this responder dial over TCP, and which targets (dial-policy.ts). Without a token, `POST /v1/dial`
   * is served on the control socket only (a node's responder: always).
   */
  dial?: { token?: string; allowedCidrs: readonly string[] };
  /**
   * The node agent's API socket (a hostPath mount on a cluster): `POST /v1/evidence` is relayed to it, behind the
   * same probe token as a TCP dial, so `flatnet check --kubeconfig` gets each node's evidence through pods/proxy.
   */
  agentSocket?: string;
}

export interface Responder {
  readonly port: number;
  close(): Promise<void>;
}

const RESPONDER_LIMITS: ConnectionLimits = { waitMs: 10_000, maxConnections: 1024 };

// Echo bodies are counted, never buffered; a dial request is parsed whole: MAX_DIAL_TARGETS targets fit in 2 MiB.
const MAX_DIAL_BODY = 2 * 1024 * 1024;

// The probe id and sequence an echo request starts with (the dialer writes them first, by hand).
const PROBE_HEAD = /"probeId":"([^"]{0,128})","seq":(\d{1,9})/;

/**
 * Start a probe responder in the current network namespace: HTTP on TCP `port` (`POST /v1/echo`,
 * `POST /v1/dial`, `GET /v1/identity`, `GET /healthz`, agnhost-style `GET /clientip`) and a UDP echo on
 * the same port. Every echo reply carries the source the responder saw and its identity; a UDP reply that would be
 * larger than its request is not sent (the dialer pads its echoes to `UDP_ECHO_BYTES`).
 */
export async function startResponder(options: ResponderOptions): Promise<Responder> {
  const policy: DialPolicy = { allowedCidrs: options.dial?.allowedCidrs ?? [], port: options.port };
  if (options.dial?.token !== undefined) policy.token = options.dial.token;
  const handler = createHandler(options.identity, policy, "tcp", options.agentSocket);
  const newTcp = (): Server => {
    const server = createServer({ keepAlive: true }, handler);
    server.keepAliveTimeout = 5_000;
    // Reachable from every pod: silent or dripping clients cannot hold it (many dialers keep a connection each).
    guardConnections(server, RESPONDER_LIMITS);
    return server;
  };
  const tcpServers: Server[] = [];
  const closeTcp = (): Promise<unknown> => Promise.all(tcpServers.map(closeServer));
  try {
    // undefined: every address (closeServer skips a server that never listened).
    for (const host of options.listenAddresses?.length ? options.listenAddresses : [undefined]) {
      const server = newTcp();
      tcpServers.push(server);
      await (host === undefined ? listenDualStack(server, options.port) : listen(server, { port: options.port, host }));
    }
  } catch (error) {
    await closeTcp();
    throw error;
  }
  let control: Server | undefined;
  if (options.controlSocket !== undefined) {
    await unlink(options.controlSocket).catch(() => undefined);
    control = createServer(createHandler(options.identity, policy, "control", options.agentSocket));
    // It dials for whoever connects: owner only, from the moment the socket exists.
    await listen(control, { path: options.controlSocket }, 0o600).catch(async (error: unknown) => {
      await closeTcp();
      throw error;
    });
  }
  let udp: UdpSocket[];
  try {
    udp = await startUdpEcho(options.identity, options.port);
  } catch (error) {
    await closeTcp();
    if (control !== undefined) await closeServer(control);
    throw error;
  }
  return {
    port: options.port,
    async close() {
      for (const s of udp) s.close();
      await closeTcp();
      if (control !== undefined) await closeServer(control);
    },
  };
}

function createHandler(identity: ResponderIdentity, policy: DialPolicy, via: "control" | "tcp", agentSocket: string | undefined): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = req.url ?? "/";
    const path = url.split("?")[0];
    if (req.method === "POST" && path === "/v1/echo") return void echo(req, res, identity);
    // A refused request's body is drained, not read.
    const refuse = (refusal: { status: number; code: string; detail: string }): void => {
      req.resume();
      sendProblem(res, refusal.status, refusal.code, refusal.detail);
    };
    if (req.method === "POST" && path === "/v1/dial") {
      const refused = authorizeDial(policy, via, req.headers[PROBE_TOKEN_HEADER]);
      return refused !== undefined ? refuse(refused) : void dial(req, res, identity, policy, via);
    }
    if (req.method === "POST" && path === "/v1/evidence") {
      const refused = authorizeDial(policy, via, req.headers[PROBE_TOKEN_HEADER], "POST /v1/evidence");
      if (refused !== undefined) return refuse(refused);
      if (agentSocket === undefined) {
        return refuse({ status: 404, code: "ERR_NO_AGENT_SOCKET", detail: "this responder relays POST /v1/evidence only when started with --agent-socket (the node agent's API socket)" });
      }
      return relayEvidence(req, res, agentSocket);
    }
    if (req.method === "GET" && path === "/v1/identity") return sendJson(res, 200, identity);
    if (req.method === "GET" && path === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (req.method === "GET" && path === "/clientip") {
      res.writeHead(200, { "content-type": "text/plain" });
      return void res.end(`${urlHost(req.socket.remoteAddress ?? "")}:${req.socket.remotePort ?? 0}\n`);
    }
    refuse({ status: 404, code: "ERR_NOT_FOUND", detail: `no route ${req.method} ${path}; the responder serves POST /v1/echo, POST /v1/dial, POST /v1/evidence, GET /v1/identity, GET /healthz, GET /clientip` });
  };
}

const RELAY_TIMEOUT_MS = 15_000;

/** Pass a `POST /v1/evidence` through to the node agent's API socket and its answer back, unchanged (the agent validates). */
function relayEvidence(req: IncomingMessage, res: ServerResponse, agentSocket: string): void {
  const headers: Record<string, string> = { "content-type": req.headers["content-type"] ?? "application/json" };
  if (req.headers["content-length"] !== undefined) headers["content-length"] = req.headers["content-length"];
  const upstream = request({ socketPath: agentSocket, path: "/v1/evidence", method: "POST", headers, timeout: RELAY_TIMEOUT_MS }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, { "content-type": answer.headers["content-type"] ?? "application/json" });
    answer.pipe(res);
  });
  upstream.on("timeout", () => upstream.destroy(new Error(`no answer for ${RELAY_TIMEOUT_MS} ms`)));
  upstream.on("error", (error) => {
    req.resume();
    if (!res.headersSent) sendProblem(res, 502, "ERR_AGENT_UNREACHABLE", `the node agent's socket ${agentSocket} did not answer POST /v1/evidence: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
    else res.destroy(error);
  });
  req.pipe(upstream);
}

function echo(req: IncomingMessage, res: ServerResponse, identity: ResponderIdentity): void {
  let bytes = 0;
  let head = "";
  req.on("data", (chunk: Buffer) => {
    // The probe id sits in the first bytes as JSON; the rest of a large body is padding.
    if (head.length < 512) head += chunk.subarray(0, 512 - head.length).toString("latin1");
    bytes += chunk.length;
  });
  req.on("end", () => {
    sendJson(res, 200, echoReply(PROBE_HEAD.exec(head), {
      transport: "tcp",
      observedSrc: { ip: req.socket.remoteAddress ?? "", port: req.socket.remotePort ?? 0 },
      localDst: { ip: req.socket.localAddress ?? "", port: req.socket.localPort ?? 0 },
      responder: identity,
      bytesReceived: bytes,
    }));
  });
}

/** An echo's reply: the probe id and sequence its request starts with, then what the responder saw of it. */
function echoReply(head: RegExpExecArray | null, seen: Omit<EchoReply, "v" | "probeId" | "seq">): EchoReply {
  return { v: PROBE_PROTOCOL_VERSION, probeId: head?.[1] ?? "", seq: Number(head?.[2] ?? 0), ...seen };
}

function dial(req: IncomingMessage, res: ServerResponse, identity: ResponderIdentity, policy: DialPolicy, via: "control" | "tcp"): void {
  readJson(req, MAX_DIAL_BODY).then(
    async (body) => {
      const parsed = dialRequestSchema.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return sendProblem(res, 400, "ERR_INVALID_DIAL", `dial request is invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}`);
      }
      const refused = checkDialTargets(policy, via, parsed.data);
      if (refused !== undefined) return sendProblem(res, refused.status, refused.code, refused.detail);
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const controller = new AbortController();
      res.on("close", () => controller.abort());
      for await (const result of dialTargets(parsed.data, identity, controller.signal)) {
        if (controller.signal.aborted) break;
        res.write(`${JSON.stringify(result)}\n`);
      }
      res.end();
    },
    (error: Error) => sendProblem(res, 400, "ERR_INVALID_DIAL", error.message),
  );
}

async function startUdpEcho(identity: ResponderIdentity, port: number): Promise<UdpSocket[]> {
  // Bound per pod IP, so the reply names the address the datagram reached (Node has no IP_PKTINFO).
  const addresses = identity.podIps.length > 0 ? identity.podIps : ["::"];
  const sockets: UdpSocket[] = [];
  for (const address of addresses) {
    const family = probeAddressFamily(address) === "IPv4" ? "udp4" : "udp6";
    const socket = createSocket({ type: family, reuseAddr: true });
    socket.on("message", (message, rinfo) => {
      // Never an amplifier: a reply is at most as large as its request (the source address may be spoofed).
      const reply = (text: string): void => {
        if (Buffer.byteLength(text) <= message.length) socket.send(text, rinfo.port, rinfo.address);
      };
      const head = PROBE_HEAD.exec(message.subarray(0, 256).toString("latin1"));
      // Not ours: answer agnhost-style with the source we saw.
      if (head === null) return reply(`${urlHost(rinfo.address)}:${rinfo.port}\n`);
      reply(JSON.stringify(echoReply(head, {
        transport: "udp",
        observedSrc: { ip: rinfo.address, port: rinfo.port },
        localDst: { ip: address === "::" ? "" : address, port },
        responder: identity,
        bytesReceived: message.length,
      })));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind({ port, address, exclusive: true }, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      for (const s of [...sockets, socket]) {
        try {
          s.close();
        } catch {
          // never bound: nothing to close
        }
      }
      throw error;
    }
    sockets.push(socket);
  }
  return sockets;
}

// "::" accepts IPv4 too (Node's default ipv6Only: false); a namespace with IPv6 disabled refuses it: fall back to IPv4 only.
function listenDualStack(server: Server, port: number): Promise<void> {
  return listen(server, { port, host: "::" }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "EAFNOSUPPORT" || error.code === "EADDRNOTAVAIL") return listen(server, { port, host: "0.0.0.0" });
    throw error;
  });
}

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error(`request body exceeds ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new Error("request body is not JSON"));
      }
    });
    req.on("error", reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
