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
import { urlHost } from "../http/client.ts";

/**
 * Dial every target of a request from this process (so from this pod's IP), yielding each target's result as
 * soon as it is known. Three phases, so that the RTT samples measure the path and not this process's queue:
 *
 * 1. bulk (`options.concurrency` targets at a time): one TCP connection per target (the handshake is timed
 *    apart, `tcp.connectMs`, never an RTT sample), the 16 KiB transfer on it, the pod-MTU datagram. This also
 *    warms both ends' code paths. A target that fails here is finished at once the old way (echoes alongside)
 *    and yielded, so a broken target costs its timeouts once and streams as before.
 * 2. latency (one target at a time): the TCP echoes on the established connection, then the UDP echoes, with
 *    nothing else of this source in flight: no transfer, no MTU datagram, no other target's echoes. An echo
 *    that goes unanswered ends the phase (the rest is sampled in phase 3), so a path that drops replies costs
 *    one timeout per source, not one per target.
 * 3. results (`options.concurrency` at a time): whatever phase 2 left, then one result per target.
 */
export async function* dialTargets(request: DialRequest, _self: ResponderIdentity, signal?: AbortSignal): AsyncGenerator<DialResult> {
  const options = request.options;
  const udp = new UdpProber();
  const states = new Map<string, TargetState>();
  try {
    const healthy: DialTarget[] = [];
    for await (const done of mapConcurrent(request.targets, options.concurrency, (t) => bulkPhase(t, options, udp, states), signal)) {
      if (done.result !== undefined) yield done.result;
      else healthy.push(done.target);
    }
    if (options.udpCount > 0) await udp.ready(healthy.map((t) => (probeAddressFamily(t.ip) === "IPv6" ? "udp6" : "udp4")));
    for (const target of healthy) {
      if (signal?.aborted) break;
      if (!(await latencyPhase(target, options, udp, states.get(target.pairId) as TargetState))) break;
    }
    yield* mapConcurrent(healthy, options.concurrency, (t) => finish(t, options, udp, states.get(t.pairId) as TargetState), signal);
  } finally {
    for (const state of states.values()) state.client?.destroy();
    udp.close();
  }
}

/** What is known of one target between the phases. */
interface TargetState {
  client?: EchoClient;
  connectMs?: number;
  connectError?: string;
  tcpRtt: number[];
  tcpReply?: EchoReply;
  tcpError?: string;
  /** The TCP echoes were taken (whether they succeeded or not). */
  tcpDone: boolean;
  udp?: NonNullable<DialResult["udp"]>;
  tcpMtu?: { ok: boolean; error?: string };
  udpMtu?: { ok: boolean; bytes: number; error?: string };
}

const needsTcp = (options: ProbeOptions): boolean => options.tcpCount > 0 || options.mtuTcpBytes > 0;
let probeCounter = 0;
const nextProbeId = (): string => `${process.pid.toString(36)}-${(probeCounter++).toString(36)}`;
const round3 = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Phase 1 for one target: connect, 16 KiB transfer, pod-MTU datagram. A result when the target is finished here. */
async function bulkPhase(target: DialTarget, options: ProbeOptions, udp: UdpProber, states: Map<string, TargetState>): Promise<{ target: DialTarget; result?: DialResult }> {
  const state: TargetState = { tcpRtt: [], tcpDone: false };
  states.set(target.pairId, state);
  const family = probeAddressFamily(target.ip);
  const [tcpOk, udpMtuOk] = await Promise.all([
    needsTcp(options) ? connectAndTransfer(target, options, state) : true,
    options.podMtu > 0 ? udpMtuCheck(target, options, udp, family).then((m) => (state.udpMtu = m).ok) : true,
  ]);
  if (tcpOk && udpMtuOk) return { target };
  return { target, result: await finish(target, options, udp, state) };
}

async function connectAndTransfer(target: DialTarget, options: ProbeOptions, state: TargetState): Promise<boolean> {
  const started = performance.now();
  try {
    state.client = await EchoClient.connect(target.ip, target.port, options.timeoutMs);
    state.connectMs = round3(performance.now() - started);
  } catch (error) {
    state.connectError = describe(error);
    return false;
  }
  if (options.mtuTcpBytes <= 0) return true;
  try {
    const { reply } = await state.client.echo(nextProbeId(), 0, options.mtuTcpBytes, options.timeoutMs);
    const ok = reply.bytesReceived >= options.mtuTcpBytes;
    state.tcpMtu = ok ? { ok } : { ok, error: `responder received ${reply.bytesReceived} of ${options.mtuTcpBytes} bytes` };
  } catch (error) {
    state.tcpMtu = { ok: false, error: describe(error) };
  }
  return state.tcpMtu.ok;
}

/** Phase 2 for one target, alone. False when an echo went unanswered (the caller stops sampling the others). */
async function latencyPhase(target: DialTarget, options: ProbeOptions, udp: UdpProber, state: TargetState): Promise<boolean> {
  if (state.client !== undefined && !(await tcpEchoes(target, options, state))) return false;
  if (options.udpCount > 0) {
    state.udp = await udpEchoes(target, options, udp, true);
    if (state.udp.received === 0) state.udp = undefined; // taken again in phase 3, alongside the other targets'
    // A loss cost a timeout: the remaining targets are sampled in phase 3, so a lossy path costs it once.
    if (state.udp === undefined || state.udp.received < state.udp.sent) return false;
  }
  return true;
}

/** The TCP echoes on the target's connection (reopened, untimed, when the responder closed an idle one). */
async function tcpEchoes(target: DialTarget, options: ProbeOptions, state: TargetState): Promise<boolean> {
  state.tcpDone = true;
  if (options.tcpCount <= 0) return true;
  try {
    // Reopened, untimed: after a failed transfer (its bytes may still sit in the socket) or when the responder
    // closed a connection idle for 5 s.
    if (state.client === undefined || state.client.closed || state.tcpMtu?.ok === false) {
      state.client?.destroy();
      state.client = await EchoClient.connect(target.ip, target.port, options.timeoutMs);
    }
    for (let seq = 0; seq < options.tcpCount; seq++) {
      const { reply, rttMs } = await state.client.echo(nextProbeId(), seq, 0, options.timeoutMs);
      state.tcpRtt.push(rttMs);
      state.tcpReply ??= reply;
    }
    return true;
  } catch (error) {
    state.tcpError = describe(error);
    return false;
  }
}

/** Phase 3 (or the end of phase 1 for a failed target): what is still missing, then the target's result. */
async function finish(target: DialTarget, options: ProbeOptions, udp: UdpProber, state: TargetState): Promise<DialResult> {
  await Promise.all([
    // A connection that never opened is the TCP verdict itself; no second try.
    !state.tcpDone && state.connectError === undefined && needsTcp(options) ? tcpEchoes(target, options, state) : undefined,
    options.udpCount > 0 && state.udp === undefined ? udpEchoes(target, options, udp).then((u) => (state.udp = u)) : undefined,
  ]);
  const result: DialResult = { pairId: target.pairId, controlOk: true };
  if (options.tcpCount > 0 || (options.mtuTcpBytes > 0 && state.connectError !== undefined)) {
    const error = state.connectError ?? state.tcpError;
    result.tcp = { ok: error === undefined, rttMs: state.tcpRtt, ...defined({ error, connectMs: state.connectMs, reply: state.tcpReply }) };
  }
  if (state.udp !== undefined) result.udp = state.udp;
  // A connection that never opened says nothing about the MTU: no transfer result then (as the TCP verdict says it).
  const { tcpMtu, udpMtu } = state;
  if (tcpMtu !== undefined || udpMtu !== undefined) {
    result.mtu = {
      tcpBytes: options.mtuTcpBytes,
      udpBytes: udpMtu?.bytes ?? 0,
      ...defined({ tcpOk: tcpMtu?.ok, tcpError: tcpMtu?.error, udpOk: udpMtu?.ok, udpError: udpMtu?.error }),
    };
  }
  return result;
}

/** The fields of `fields` that are not undefined (an optional field is absent, never present as undefined). */
function defined<T extends object>(fields: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/**
 * `udpCount` UDP echoes to one target; each sample is timed from its send to its reply's arrival. One after the
 * other in the latency phase (so no echo waits behind another in the responder), else sent together.
 */
async function udpEchoes(target: DialTarget, options: ProbeOptions, udp: UdpProber, oneByOne = false): Promise<NonNullable<DialResult["udp"]>> {
  const rttMs: number[] = [];
  let reply: EchoReply | undefined;
  let error: string | undefined;
  const send = (seq: number): ReturnType<UdpProber["echo"]> => udp.echo(target, nextProbeId(), seq, UDP_ECHO_BYTES, options.timeoutMs);
  const answers: Awaited<ReturnType<UdpProber["echo"]>>[] = [];
  if (oneByOne) {
    // After a loss, the rest go together: a lossy path costs one timeout, not one per echo.
    for (let seq = 0; seq < options.udpCount; seq++) {
      const answer = await send(seq);
      answers.push(answer);
      if (!("reply" in answer)) {
        answers.push(...(await Promise.all(Array.from({ length: options.udpCount - seq - 1 }, (_, i) => send(seq + 1 + i)))));
        break;
      }
    }
  } else answers.push(...(await Promise.all(Array.from({ length: options.udpCount }, (_, seq) => send(seq)))));
  for (const answer of answers) {
    if ("reply" in answer) {
      rttMs.push(answer.rttMs);
      reply ??= answer.reply;
    } else error ??= answer.error;
  }
  return { sent: options.udpCount, received: rttMs.length, rttMs, ...defined({ reply, error: rttMs.length < options.udpCount ? error : undefined }) };
}

/**
 * Size of a UDP echo request: a responder never answers with more bytes than it received (no amplifier), and its
 * reply (identity, addresses) must fit. Below 1024 bytes, well under any pod MTU.
 */
export const UDP_ECHO_BYTES = 1000;

/** One UDP datagram filling the pod MTU exactly (a second one once, when the first only taught PMTUD). */
async function udpMtuCheck(target: DialTarget, options: ProbeOptions, udp: UdpProber, family: "IPv4" | "IPv6" | undefined): Promise<{ ok: boolean; bytes: number; error?: string }> {
  // IPv4 header 20 + UDP 8; IPv6 header 40 + UDP 8: a datagram that fills the pod MTU exactly.
  const bytes = options.podMtu - (family === "IPv6" ? 48 : 28);
  let last: { reply: EchoReply } | { error: string } = { error: "not sent" };
  // A second datagram once: the first may only have taught the kernel a smaller path MTU (PMTUD works then).
  for (let tryNo = 0; tryNo < 2 && !("reply" in last); tryNo++) {
    last = await udp.echo(target, nextProbeId(), 0, bytes, options.timeoutMs);
  }
  if ("reply" in last && last.reply.bytesReceived !== bytes) last = { error: `responder received ${last.reply.bytesReceived} of ${bytes} bytes` };
  return "reply" in last ? { ok: true, bytes } : { ok: false, bytes, error: last.error };
}

/** Sequential HTTP/1.1 echo requests on one kept-alive TCP connection, written by hand to keep a probe cheap. */
class EchoClient {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  /** When the last bytes arrived (stamped in the data event, before any parsing or promise hop). */
  private lastDataAt = 0;

  private constructor(private readonly socket: Socket, private readonly host: string) {
    socket.on("data", (chunk: Buffer) => {
      this.lastDataAt = performance.now();
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
        resolve(new EchoClient(socket, urlHost(ip)));
      });
      socket.once("error", (error) => {
        cancel();
        reject(error);
      });
    });
  }

  /** True once the responder closed the connection or it failed. */
  get closed(): boolean {
    return this.failure !== undefined || this.socket.destroyed;
  }

  /** One echo; `rttMs` runs from just before the write to the arrival of the reply's last bytes. */
  async echo(probeId: string, seq: number, padding: number, timeoutMs: number): Promise<{ reply: EchoReply; rttMs: number }> {
    const head = `{"probeId":"${probeId}","seq":${seq}}`;
    const length = Math.max(head.length, padding);
    const request = `POST /v1/echo HTTP/1.1\r\nHost: ${this.host}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n${head}`;
    const sentAt = performance.now();
    this.socket.write(request);
    if (length > head.length) this.socket.write(spaces(length - head.length));
    const reply = await this.awaitReply(timeoutMs);
    return { reply, rttMs: round3(this.lastDataAt - sentAt) };
  }

  private async awaitReply(timeoutMs: number): Promise<EchoReply> {
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
  private readonly pending = new Map<string, (reply: EchoReply, arrivedAt: number) => void>();

  /** Open (bind) the sockets of these families before any echo is timed. */
  async ready(types: readonly ("udp4" | "udp6")[]): Promise<void> {
    await Promise.all([...new Set(types)].map((type) => this.socket(type).catch(() => undefined)));
  }

  echo(target: DialTarget, probeId: string, seq: number, size: number, timeoutMs: number): Promise<{ reply: EchoReply; rttMs: number } | { error: string }> {
    const type = probeAddressFamily(target.ip) === "IPv6" ? "udp6" : "udp4";
    return this.socket(type).then(
      (socket) =>
        new Promise((resolve) => {
          const key = `${probeId}/${seq}`;
          const head = `{"probeId":"${probeId}","seq":${seq}`;
          // head + `,"pad":"` (8) + padding + `"}` (2) = size bytes exactly: one byte more and the pod fragments it itself.
          const payload = size > head.length + 10 ? `${head},"pad":"${"x".repeat(size - head.length - 10)}"}` : `${head}}`;
          const settle = (answer: { reply: EchoReply; rttMs: number } | { error: string }): void => {
            cancel();
            this.pending.delete(key);
            resolve(answer);
          };
          const cancel = expireAfter(timeoutMs, () => {
            if (this.pending.has(key)) settle({ error: `no UDP reply from ${target.ip}:${target.port} within ${timeoutMs} ms` });
          });
          let started = 0;
          this.pending.set(key, (reply, arrivedAt) => settle({ reply, rttMs: round3(arrivedAt - started) }));
          started = performance.now();
          socket.send(payload, target.port, target.ip, (error) => {
            if (error) settle({ error: describe(error) });
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
          const arrivedAt = performance.now();
          let reply: EchoReply;
          try {
            reply = echoReplySchema.parse(JSON.parse(message.toString("utf8")));
          } catch {
            return; // not a probe reply
          }
          this.pending.get(`${reply.probeId}/${reply.seq}`)?.(reply, arrivedAt);
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
      task(item)
        .then((r) => void done.push(r), (error: unknown) => void (failure ??= error))
        .then(() => {
          running--;
          wake?.();
        });
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
  return (error as Error | undefined)?.message ?? String(error);
}
