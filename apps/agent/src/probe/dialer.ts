import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import {
  echoReplySchema,
  probeAddressFamily,
  type DialRequest,
  type DialResult,
  type DialTarget,
  type EchoReply,
  type ProbeOptions,
  type ResponderIdentity,
} from "@flatnet/core";

/**
 * Dial every target of a request from this process (so from this pod's IP), `options.concurrency` at a
 * time, yielding each target's result as soon as it is known.
 */
export async function* dialTargets(request: DialRequest, _self: ResponderIdentity, signal?: AbortSignal): AsyncGenerator<DialResult> {
  const udp = new UdpProber();
  try {
    yield* mapConcurrent(request.targets, request.options.concurrency, (target) => dialOne(target, request.options, udp), signal);
  } finally {
    udp.close();
  }
}

async function dialOne(target: DialTarget, options: ProbeOptions, udp: UdpProber): Promise<DialResult> {
  const result: DialResult = { pairId: target.pairId, controlOk: true };
  const family = probeAddressFamily(target.ip);
  const [tcp, udpOutcome] = await Promise.all([
    options.tcpCount > 0 || options.mtuTcpBytes > 0 ? tcpChecks(target, options) : undefined,
    options.udpCount > 0 || options.podMtu > 0 ? udpChecks(target, options, udp, family) : undefined,
  ]);
  if (tcp?.tcp !== undefined) result.tcp = tcp.tcp;
  if (udpOutcome?.udp !== undefined) result.udp = udpOutcome.udp;
  if (tcp?.mtu !== undefined || udpOutcome?.mtu !== undefined) {
    result.mtu = { tcpBytes: options.mtuTcpBytes, udpBytes: udpOutcome?.mtu?.bytes ?? 0 };
    if (tcp?.mtu !== undefined) {
      result.mtu.tcpOk = tcp.mtu.ok;
      if (tcp.mtu.error !== undefined) result.mtu.tcpError = tcp.mtu.error;
    }
    if (udpOutcome?.mtu !== undefined) {
      result.mtu.udpOk = udpOutcome.mtu.ok;
      if (udpOutcome.mtu.error !== undefined) result.mtu.udpError = udpOutcome.mtu.error;
    }
  }
  return result;
}

let probeCounter = 0;
const nextProbeId = (): string => `${process.pid.toString(36)}-${(probeCounter++).toString(36)}`;

async function tcpChecks(target: DialTarget, options: ProbeOptions): Promise<{ tcp?: DialResult["tcp"]; mtu?: { ok: boolean; error?: string } }> {
  const rttMs: number[] = [];
  let client: EchoClient | undefined;
  let reply: EchoReply | undefined;
  try {
    const started = performance.now();
    client = await EchoClient.connect(target.ip, target.port, options.timeoutMs);
    const connectMs = performance.now() - started;
    const count = Math.max(1, options.tcpCount);
    for (let seq = 0; seq < count; seq++) {
      const t0 = performance.now();
      const r = await client.echo(nextProbeId(), seq, 0, options.timeoutMs);
      // The first sample includes the handshake: that is what a client of the pod sees.
      rttMs.push(performance.now() - t0 + (seq === 0 ? connectMs : 0));
      reply ??= r;
    }
  } catch (error) {
    client?.destroy();
    const tcp: DialResult["tcp"] = { ok: false, rttMs, error: describe(error) };
    if (reply !== undefined) tcp.reply = reply;
    return { tcp };
  }
  const tcp: DialResult["tcp"] = options.tcpCount > 0 ? { ok: true, rttMs, ...(reply ? { reply } : {}) } : undefined;
  if (options.mtuTcpBytes <= 0) {
    client.destroy();
    return tcp ? { tcp } : {};
  }
  try {
    const r = await client.echo(nextProbeId(), 0, options.mtuTcpBytes, options.timeoutMs);
    const ok = r.bytesReceived >= options.mtuTcpBytes;
    return { ...(tcp ? { tcp } : {}), mtu: ok ? { ok } : { ok, error: `responder received ${r.bytesReceived} of ${options.mtuTcpBytes} bytes` } };
  } catch (error) {
    return { ...(tcp ? { tcp } : {}), mtu: { ok: false, error: describe(error) } };
  } finally {
    client.destroy();
  }
}

async function udpChecks(
  target: DialTarget,
  options: ProbeOptions,
  udp: UdpProber,
  family: "IPv4" | "IPv6" | undefined,
): Promise<{ udp?: DialResult["udp"]; mtu?: { ok: boolean; bytes: number; error?: string } }> {
  const out: { udp?: DialResult["udp"]; mtu?: { ok: boolean; bytes: number; error?: string } } = {};
  if (options.udpCount > 0) {
    const rttMs: number[] = [];
    let reply: EchoReply | undefined;
    let error: string | undefined;
    const answers = await Promise.all(
      Array.from({ length: options.udpCount }, (_, seq) => udp.echo(target, nextProbeId(), seq, 0, options.timeoutMs)),
    );
    for (const answer of answers) {
      if ("reply" in answer) {
        rttMs.push(answer.rttMs);
        reply ??= answer.reply;
      } else error ??= answer.error;
    }
    out.udp = { sent: options.udpCount, received: rttMs.length, rttMs };
    if (reply !== undefined) out.udp.reply = reply;
    if (error !== undefined && rttMs.length < options.udpCount) out.udp.error = error;
  }
  if (options.podMtu > 0) {
    // IPv4 header 20 + UDP 8; IPv6 header 40 + UDP 8: a datagram that fills the pod MTU exactly.
    const bytes = options.podMtu - (family === "IPv6" ? 48 : 28);
    let last: { reply: EchoReply } | { error: string } = { error: "not sent" };
    // A second datagram once: the first may only have taught the kernel a smaller path MTU (PMTUD works then).
    for (let tryNo = 0; tryNo < 2 && !("reply" in last); tryNo++) {
      last = await udp.echo(target, nextProbeId(), 0, bytes, options.timeoutMs);
    }
    if ("reply" in last && last.reply.bytesReceived !== bytes) last = { error: `responder received ${last.reply.bytesReceived} of ${bytes} bytes` };
    out.mtu = "reply" in last ? { ok: true, bytes } : { ok: false, bytes, error: last.error };
  }
  return out;
}

/** Sequential HTTP/1.1 echo requests on one kept-alive TCP connection, written by hand to keep a probe cheap. */
class EchoClient {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket, private readonly host: string) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    const fail = (error: Error): void => {
      this.failure ??= error;
      this.waiter?.();
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("connection closed by responder")));
  }

  static connect(ip: string, port: number, timeoutMs: number): Promise<EchoClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: ip, port, noDelay: true });
      const cancel = expireAfter(timeoutMs, () => {
        socket.destroy();
        reject(new Error(`connect to ${ip}:${port} timed out after ${timeoutMs} ms`));
      });
      socket.once("connect", () => {
        cancel();
        socket.removeAllListeners("error");
        resolve(new EchoClient(socket, ip.includes(":") ? `[${ip}]` : ip));
      });
      socket.once("error", (error) => {
        cancel();
        reject(error);
      });
    });
  }

  async echo(probeId: string, seq: number, padding: number, timeoutMs: number): Promise<EchoReply> {
    const head = `{"probeId":"${probeId}","seq":${seq}}`;
    const length = Math.max(head.length, padding);
    this.socket.write(`POST /v1/echo HTTP/1.1\r\nHost: ${this.host}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n${head}`);
    if (length > head.length) this.socket.write(spaces(length - head.length));
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const parsed = this.takeResponse();
      if (parsed !== undefined) return parsed;
      if (this.failure !== undefined) throw this.failure;
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        // Let pending socket reads run first: a starved process must not call a reply that already arrived lost.
        await new Promise((resolve) => setImmediate(resolve));
        const late = this.takeResponse();
        if (late !== undefined) return late;
        throw new Error(`no echo reply within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  private takeResponse(): EchoReply | undefined {
    const end = this.buffer.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const headers = this.buffer.subarray(0, end).toString("latin1");
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? NaN);
    if (!Number.isFinite(length)) throw new Error("echo reply has no content-length");
    if (this.buffer.length < end + 4 + length) return undefined;
    const body = this.buffer.subarray(end + 4, end + 4 + length).toString("utf8");
    this.buffer = this.buffer.subarray(end + 4 + length);
    const status = Number(headers.slice(9, 12));
    if (status !== 200) throw new Error(`echo answered HTTP ${status}: ${body.slice(0, 200)}`);
    return echoReplySchema.parse(JSON.parse(body));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A timeout that fires only after the event loop has polled for I/O once more: libuv runs timers before the
 * poll phase, so in a process starved of CPU the timer would otherwise win against a reply already received.
 */
function expireAfter(ms: number, onExpire: () => void): () => void {
  let cancelled = false;
  const timer = setTimeout(() => setImmediate(() => cancelled || onExpire()), ms);
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

// One shared block of spaces: thousands of MTU transfers must not allocate their padding each.
let paddingBlock = Buffer.alloc(0);
function spaces(bytes: number): Buffer {
  if (paddingBlock.length < bytes) paddingBlock = Buffer.alloc(bytes, 32);
  return paddingBlock.subarray(0, bytes);
}

/** UDP echo over one socket per family; replies are matched to requests by probe id and sequence. */
class UdpProber {
  private readonly sockets = new Map<"udp4" | "udp6", Promise<UdpSocket>>();
  private readonly pending = new Map<string, (reply: EchoReply) => void>();

  echo(target: DialTarget, probeId: string, seq: number, size: number, timeoutMs: number): Promise<{ reply: EchoReply; rttMs: number } | { error: string }> {
    const type = probeAddressFamily(target.ip) === "IPv6" ? "udp6" : "udp4";
    return this.socket(type).then(
      (socket) =>
        new Promise((resolve) => {
          const key = `${probeId}/${seq}`;
          const head = `{"probeId":"${probeId}","seq":${seq}`;
          // head + `,"pad":"` (8) + padding + `"}` (2) = size bytes exactly: one byte more and the pod fragments it itself.
          const payload = size > head.length + 10 ? `${head},"pad":"${"x".repeat(size - head.length - 10)}"}` : `${head}}`;
          const started = performance.now();
          const cancel = expireAfter(timeoutMs, () => {
            if (!this.pending.has(key)) return;
            this.pending.delete(key);
            resolve({ error: `no UDP reply from ${target.ip}:${target.port} within ${timeoutMs} ms` });
          });
          this.pending.set(key, (reply) => {
            cancel();
            this.pending.delete(key);
            resolve({ reply, rttMs: performance.now() - started });
          });
          socket.send(payload, target.port, target.ip, (error) => {
            if (error) {
              cancel();
              this.pending.delete(key);
              resolve({ error: describe(error) });
            }
          });
        }),
      (error: unknown) => ({ error: describe(error) }),
    );
  }

  private socket(type: "udp4" | "udp6"): Promise<UdpSocket> {
    let socket = this.sockets.get(type);
    if (socket === undefined) {
      socket = new Promise((resolve, reject) => {
        const s = createSocket(type);
        s.on("message", (message) => {
          let reply: EchoReply;
          try {
            reply = echoReplySchema.parse(JSON.parse(message.toString("utf8")));
          } catch {
            return; // not a probe reply
          }
          this.pending.get(`${reply.probeId}/${reply.seq}`)?.(reply);
        });
        s.once("error", reject);
        s.bind(0, () => {
          s.off("error", reject);
          s.on("error", () => undefined); // per-send errors arrive in the send callback
          resolve(s);
        });
      });
      this.sockets.set(type, socket);
    }
    return socket;
  }

  close(): void {
    for (const socket of this.sockets.values()) socket.then((s) => s.close(), () => undefined);
  }
}

/** Run `task` over `items` with at most `limit` in flight, yielding results in completion order. */
export async function* mapConcurrent<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>, signal?: AbortSignal): AsyncGenerator<R> {
  const done: R[] = [];
  let wake: (() => void) | undefined;
  let next = 0;
  let running = 0;
  let failure: unknown;
  const launch = (): void => {
    while (running < limit && next < items.length && !signal?.aborted) {
      const item = items[next++] as T;
      running++;
      task(item).then(
        (r) => {
          running--;
          done.push(r);
          wake?.();
        },
        (error: unknown) => {
          running--;
          failure ??= error;
          wake?.();
        },
      );
    }
  };
  launch();
  while (running > 0 || done.length > 0) {
    if (done.length === 0) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    if (failure !== undefined) throw failure;
    while (done.length > 0) yield done.shift() as R;
    launch();
  }
}

function describe(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e?.message ?? String(error);
}
