import { createSocket, type Socket as UdpSocket } from "node:dgram";
import type { ResponderIdentity } from "@flatnet/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UDP_ECHO_BYTES } from "./dialer.ts";
import { type Responder, startResponder } from "./responder.ts";

const IDENTITY: ResponderIdentity = { pod: "fn-hn-pod-a", namespace: "default", node: "node-1", podIps: ["127.0.0.1"], nodePodCidrs: ["10.244.1.0/24"], nodeIps: ["127.0.0.1"] };

// A free loopback port (TCP and UDP of the responder share it).
async function freePort(): Promise<number> {
  const probe = createSocket("udp4");
  await new Promise<void>((resolve) => probe.bind(0, "127.0.0.1", resolve));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe("UDP echo is never an amplifier (issue 14.2)", () => {
  let responder: Responder;
  let client: UdpSocket;
  const replies: { size: number; text: string }[] = [];
  let onReply: (() => void) | undefined;

  beforeAll(async () => {
    responder = await startResponder({ identity: IDENTITY, port: await freePort(), listenAddresses: ["127.0.0.1"] });
    client = createSocket("udp4");
    client.on("message", (message) => {
      replies.push({ size: message.length, text: message.toString("utf8") });
      onReply?.();
    });
    await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", resolve));
  });
  afterAll(async () => {
    client.close();
    await responder.close();
  });

  // Loopback keeps order: once the reply to a large marker arrives, every earlier datagram was answered or dropped.
  async function send(datagrams: string[]): Promise<{ size: number; text: string }[]> {
    replies.length = 0;
    const marker = `{"probeId":"marker","seq":1,"pad":"${"x".repeat(UDP_ECHO_BYTES)}"}`;
    const done = new Promise<void>((resolve) => (onReply = () => replies.some((r) => r.text.includes('"marker"')) && resolve()));
    for (const datagram of [...datagrams, marker]) client.send(datagram, responder.port, "127.0.0.1");
    await done;
    return replies.filter((r) => !r.text.includes('"marker"'));
  }

  it.each([
    ["a bare 22-byte probe", `{"probeId":"a","seq":1}`],
    ["a 1-byte datagram (agnhost-style answer)", "x"],
    ["a 12-byte datagram", "hello world\n"],
  ])("%s gets no reply larger than itself", async (_, datagram) => {
    const answered = await send([datagram]);
    for (const reply of answered) expect(reply.size).toBeLessThanOrEqual(Buffer.byteLength(datagram));
    expect(answered).toEqual([]);
  });

  it("a probe padded to UDP_ECHO_BYTES gets its full echo reply, no larger than the request", async () => {
    const head = `{"probeId":"b","seq":7`;
    const datagram = `${head},"pad":"${"x".repeat(UDP_ECHO_BYTES - head.length - 10)}"}`;
    expect(Buffer.byteLength(datagram)).toBe(UDP_ECHO_BYTES);
    const [reply, ...rest] = await send([datagram]);
    expect(rest).toEqual([]);
    expect(reply!.size).toBeLessThanOrEqual(UDP_ECHO_BYTES);
    expect(JSON.parse(reply!.text)).toMatchObject({ probeId: "b", seq: 7, transport: "udp", responder: IDENTITY, bytesReceived: UDP_ECHO_BYTES });
  });

  it("a padded agnhost-style datagram gets the source it came from", async () => {
    const datagram = "x".repeat(64);
    expect((await send([datagram])).map((r) => r.text)).toEqual([`127.0.0.1:${client.address().port}\n`]);
  });
});
