import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResponderIdentity } from "@flatnet/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentStandIn, startAgentStandIn } from "./agent-stand-in.test-util.ts";
import { PROBE_TOKEN_HEADER } from "./dial-policy.ts";
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

describe("POST /v1/evidence is relayed to the node agent's socket, for the probe token's holder only (issue 10.4)", () => {
  const TOKEN = "fn-tw-probe-token-0123456789";
  let dir: string;
  let agent: AgentStandIn;
  let relaying: Responder;
  let plain: Responder;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-tw-relay-"));
    // It answers with what it was asked, so the test sees the body pass through.
    agent = await startAgentStandIn(join(dir, "agent.sock"), (body) => ({ node: "node-1", asked: body }));
    relaying = await startResponder({ identity: IDENTITY, port: await freePort(), listenAddresses: ["127.0.0.1"], dial: { token: TOKEN, allowedCidrs: [] }, agentSocket: join(dir, "agent.sock") });
    plain = await startResponder({ identity: IDENTITY, port: await freePort(), listenAddresses: ["127.0.0.1"], dial: { token: TOKEN, allowedCidrs: [] } });
  });
  afterAll(async () => {
    await relaying.close();
    await plain.close();
    await new Promise((resolve) => agent.server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  async function ask(port: number, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`http://127.0.0.1:${port}/v1/evidence`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token === undefined ? {} : { [PROBE_TOKEN_HEADER]: token }) },
      body: JSON.stringify({ lookups: [{ dst: "10.244.2.2", from: "10.244.1.2" }] }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("passes the request body to the agent and its answer back", async () => {
    agent.received.length = 0;
    expect(await ask(relaying.port, TOKEN)).toEqual({ status: 200, body: { node: "node-1", asked: { lookups: [{ dst: "10.244.2.2", from: "10.244.1.2" }] } } });
    expect(agent.received.map((r) => r.url)).toEqual(["POST /v1/evidence"]);
  });

  it.each([
    ["no token", undefined],
    ["a wrong token", "fn-tw-not-the-token-000000"],
  ])("refuses a caller with %s (401) and never reaches the agent", async (_, token) => {
    agent.received.length = 0;
    const answer = await ask(relaying.port, token);
    expect(answer).toMatchObject({ status: 401, body: { title: "ERR_DIAL_UNAUTHORIZED", detail: `POST /v1/evidence needs the orchestrator's probe token in the ${PROBE_TOKEN_HEADER} header` } });
    expect(agent.received).toEqual([]);
  });

  it("a responder started without --agent-socket says so (404)", async () => {
    expect(await ask(plain.port, TOKEN)).toMatchObject({ status: 404, body: { title: "ERR_NO_AGENT_SOCKET" } });
  });

  it("an agent that is down is a 502 naming the socket", async () => {
    const down = await startResponder({ identity: IDENTITY, port: await freePort(), listenAddresses: ["127.0.0.1"], dial: { token: TOKEN, allowedCidrs: [] }, agentSocket: join(dir, "gone.sock") });
    try {
      expect(await ask(down.port, TOKEN)).toMatchObject({ status: 502, body: { title: "ERR_AGENT_UNREACHABLE", detail: expect.stringContaining(`${join(dir, "gone.sock")} did not answer POST /v1/evidence: ENOENT`) } });
    } finally {
      await down.close();
    }
  });
});

describe("the control socket", () => {
  const dir = mkdtempSync(join(tmpdir(), "fn-hn-control-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is the owner's only (it dials for whoever connects), and a socket that cannot be made is the start's error", async () => {
    const controlSocket = join(dir, "pod.sock");
    const responder = await startResponder({ identity: IDENTITY, port: await freePort(), listenAddresses: ["127.0.0.1"], controlSocket });
    try {
      expect(statSync(controlSocket).mode & 0o777).toBe(0o600);
      // The umask is the process's again: a file made now gets the usual mode.
      writeFileSync(join(dir, "after"), "");
      expect(statSync(join(dir, "after")).mode & 0o777).toBe(0o666 & ~process.umask());
    } finally {
      await responder.close();
    }
    // Its TCP port is free again: a failed start leaves nothing listening.
    const port = await freePort();
    await expect(startResponder({ identity: IDENTITY, port, listenAddresses: ["127.0.0.1"], controlSocket: join(dir, "missing", "pod.sock") })).rejects.toMatchObject({ syscall: "listen" });
    const again = await startResponder({ identity: IDENTITY, port, listenAddresses: ["127.0.0.1"] });
    await again.close();
  });
});
