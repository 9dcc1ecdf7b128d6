import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_PROBE_OPTIONS, PROBE_PROTOCOL_VERSION, type DialResult, type ProbeOptions, type ResponderIdentity } from "@flatnet/core";
import { dialTargets } from "./dialer.ts";

// A recording echo responder on loopback (TCP + UDP on one port): the order in which the dialer's requests
// arrive is what these tests assert, never how long anything took.

interface Seen {
  target: string;
  kind: "tcp-bulk" | "tcp-echo" | "udp-mtu" | "udp-echo";
  /** Small echoes (the RTT samples) in flight at the responders when this one arrived, itself included. */
  samplesInFlight: number;
  /** Requests this TCP connection carried before this one. */
  connectionRequests: number;
}

interface Fake {
  name: string;
  port: number;
  close(): Promise<void>;
}

const self: ResponderIdentity = { pod: "src", node: "n1", podIps: ["127.0.0.1"], nodePodCidrs: [], nodeIps: [] };
const fakes: Fake[] = [];
let seen: Seen[] = [];
let samplesInFlight = 0;

async function fake(name: string, behaviour: { dropUdp?: boolean } = {}): Promise<Fake> {
  const identity: ResponderIdentity = { pod: name, node: "n2", podIps: ["127.0.0.1"], nodePodCidrs: [], nodeIps: [] };
  const perConnection = new WeakMap<Socket, number>();
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    let head = "";
    const socket = req.socket;
    const before = perConnection.get(socket) ?? 0;
    perConnection.set(socket, before + 1);
    req.on("data", (chunk: Buffer) => {
      if (head.length < 200) head += chunk.toString("utf8", 0, Math.min(chunk.length, 200));
      bytes += chunk.length;
    });
    req.on("end", () => {
      const small = bytes < 1024;
      if (small) samplesInFlight++;
      seen.push({ target: name, kind: small ? "tcp-echo" : "tcp-bulk", samplesInFlight, connectionRequests: before });
      const { probeId, seq } = JSON.parse(head.slice(0, head.indexOf("}") + 1)) as { probeId: string; seq: number };
      const body = JSON.stringify({
        v: 1,
        probeId,
        seq,
        transport: "tcp",
        observedSrc: { ip: socket.remoteAddress, port: socket.remotePort },
        localDst: { ip: socket.localAddress, port: socket.localPort },
        responder: identity,
        bytesReceived: bytes,
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body, () => {
        if (small) samplesInFlight--;
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const udp: UdpSocket = createSocket("udp4");
  udp.on("message", (message, rinfo) => {
    const request = JSON.parse(message.toString("utf8")) as { probeId: string; seq: number };
    const small = message.length < 1024;
    seen.push({ target: name, kind: small ? "udp-echo" : "udp-mtu", samplesInFlight: samplesInFlight + (small ? 1 : 0), connectionRequests: 0 });
    if (behaviour.dropUdp && small) return;
    const reply = JSON.stringify({
      v: 1,
      probeId: request.probeId,
      seq: request.seq,
      transport: "udp",
      observedSrc: { ip: rinfo.address, port: rinfo.port },
      localDst: { ip: "127.0.0.1", port },
      responder: identity,
      bytesReceived: message.length,
    });
    udp.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => udp.bind(port, "127.0.0.1", resolve));
  const f: Fake = {
    name,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
  fakes.push(f);
  return f;
}

async function dial(targets: { name: string; port: number }[], options: Partial<ProbeOptions> = {}): Promise<Map<string, DialResult>> {
  const request = {
    v: PROBE_PROTOCOL_VERSION,
    runId: "test",
    options: { ...DEFAULT_PROBE_OPTIONS, tcpCount: 2, udpCount: 3, mtuTcpBytes: 16_384, podMtu: 1500, timeoutMs: 500, concurrency: 4, ...options },
    targets: targets.map((t) => ({ pairId: t.name, ip: "127.0.0.1", port: t.port })),
  };
  const out = new Map<string, DialResult>();
  for await (const result of dialTargets(request, self)) out.set(result.pairId, result);
  return out;
}

afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
  seen = [];
  samplesInFlight = 0;
});

describe("dialTargets: RTT samples measure the path, not the prober's queue", () => {
  it("takes every bulk check before any RTT sample, and the samples one at a time", async () => {
    const targets = await Promise.all(["a", "b", "c", "d", "e"].map((n) => fake(n)));
    const results = await dial(targets);
    expect([...results.keys()].sort()).toEqual(["a", "b", "c", "d", "e"]);
    const lastBulk = Math.max(...seen.flatMap((s, i) => (s.kind === "tcp-bulk" || s.kind === "udp-mtu" ? [i] : [])));
    const firstSample = seen.findIndex((s) => s.kind === "tcp-echo" || s.kind === "udp-echo");
    expect(lastBulk).toBeGreaterThanOrEqual(0);
    expect(firstSample).toBeGreaterThan(lastBulk);
    // Never two samples in flight at once, from any target.
    expect(seen.filter((s) => s.kind.endsWith("echo")).map((s) => s.samplesInFlight)).toEqual(Array(5 * (2 + 3)).fill(1));
  });

  it("excludes the TCP handshake: samples ride the connection that carried the transfer; connect time reported apart", async () => {
    const results = await dial([await fake("a"), await fake("b")]);
    for (const name of ["a", "b"]) {
      const r = results.get(name) as DialResult;
      expect(r.tcp?.ok).toBe(true);
      expect(r.tcp?.rttMs).toHaveLength(2);
      expect(r.tcp?.connectMs).toBeTypeOf("number");
      expect(r.udp).toMatchObject({ sent: 3, received: 3 });
      expect(r.udp?.rttMs).toHaveLength(3);
      expect(r.mtu).toMatchObject({ tcpOk: true, udpOk: true, tcpBytes: 16_384, udpBytes: 1472 });
    }
    // Each echo came on a connection that had already served the 16 KiB transfer (and earlier echoes).
    const echoes = seen.filter((s) => s.kind === "tcp-echo").map((s) => `${s.target}:${s.connectionRequests}`).sort();
    expect(echoes).toEqual(["a:1", "a:2", "b:1", "b:2"]);
  });

  it("keeps the verdict inputs of a closed port: TCP failed without samples or connect time, nothing else lost", async () => {
    const closed = await fake("gone");
    const live = await fake("live");
    await closed.close();
    fakes.splice(fakes.indexOf(closed), 1);
    const results = await dial([closed, live], { podMtu: 0 });
    const gone = results.get("gone") as DialResult;
    expect(gone.tcp).toMatchObject({ ok: false, rttMs: [] });
    expect(gone.tcp?.error).toMatch(/ECONNREFUSED/);
    expect(gone.tcp?.connectMs).toBeUndefined();
    expect(gone.mtu).toBeUndefined(); // a connection that never opened says nothing about the MTU
    expect(results.get("live")?.tcp).toMatchObject({ ok: true });
    expect(results.get("live")?.udp).toMatchObject({ received: 3 });
  });

  it("a target that drops UDP echoes costs one timeout: the others are still sampled, its loss is reported", async () => {
    const targets = [await fake("t1"), await fake("lossy", { dropUdp: true }), await fake("t3"), await fake("t4")];
    const results = await dial(targets, { concurrency: 1 });
    expect(results.get("lossy")?.udp).toMatchObject({ sent: 3, received: 0, rttMs: [] });
    expect(results.get("lossy")?.tcp).toMatchObject({ ok: true });
    for (const name of ["t1", "t3", "t4"]) expect(results.get(name)?.udp).toMatchObject({ sent: 3, received: 3 });
    // The lossy target was tried one echo at a time, then (after the loss) the rest went out together.
    expect(seen.filter((s) => s.target === "lossy" && s.kind === "udp-echo").length).toBeGreaterThanOrEqual(3);
  });

  it("UDP-only options sample in the latency phase too", async () => {
    const results = await dial([await fake("a"), await fake("b")], { tcpCount: 0, mtuTcpBytes: 0, podMtu: 0 });
    for (const name of ["a", "b"]) {
      expect(results.get(name)?.tcp).toBeUndefined();
      expect(results.get(name)?.udp).toMatchObject({ sent: 3, received: 3 });
    }
    expect(seen.map((s) => s.samplesInFlight)).toEqual(Array(6).fill(1));
  });
});
