import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { agentSocketOf, cniEnvOf, cniWorkerSocket, delegate, delegateTimeoutMs, MAX_ANSWER_BYTES, parseResponse } from "./delegate.ts";
import { parseCniCall } from "./service.ts";

const dir = mkdtempSync(join(tmpdir(), "fn-tf-delegate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A unix-socket server that answers every connection with `reply` (raw bytes) once the request has arrived. */
async function serve(name: string, reply: (request: string) => string | undefined): Promise<{ path: string; server: Server; requests: string[] }> {
  const path = join(dir, name);
  const requests: string[] = [];
  const server = createServer((socket) => {
    let got = "";
    socket.on("data", (chunk) => {
      got += chunk.toString();
      const split = got.indexOf("\r\n\r\n");
      const length = Number(/content-length: (\d+)/i.exec(got)?.[1] ?? 0);
      if (split < 0 || got.length < split + 4 + length) return;
      requests.push(got);
      const answer = reply(got);
      if (answer === undefined) socket.destroy(); // the agent dies mid-call
      else socket.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, server, requests };
}

const http = (status: string, body: string, headers = `Content-Length: ${Buffer.byteLength(body)}`) => `HTTP/1.1 ${status}\r\n${headers}\r\nConnection: close\r\n\r\n${body}`;

describe("agentSocketOf", () => {
  it.each([
    ['{"agentSocket":"/run/flatnet/n1-cni.sock"}', "/run/flatnet/n1-cni.sock"],
    ['{"agentSocket":"relative.sock"}', undefined],
    ['{"agentSocket":42}', undefined],
    ['{"cniVersion":"1.1.0"}', undefined],
    ["null", undefined],
    ["not json", undefined],
    ["", undefined],
  ])("%s -> %s", (stdin, expected) => expect(agentSocketOf(stdin)).toBe(expected));
});

describe("cniEnvOf / cniWorkerSocket / parseCniCall", () => {
  it("sends only CNI_* variables", () => {
    expect(cniEnvOf({ CNI_COMMAND: "ADD", CNI_NETNS: "/run/netns/p", PATH: "/bin", FLATNET_CNI_CRASH_AT: "after-alloc", CNI_X: undefined })).toEqual({ CNI_COMMAND: "ADD", CNI_NETNS: "/run/netns/p" });
  });
  it.each([
    ["/run/flatnet/n1.sock", "/run/flatnet/n1-cni.sock"],
    ["/tmp/lab/agents/node-2.sock", "/tmp/lab/agents/node-2-cni.sock"],
    ["/run/agent", "/run/agent-cni.sock"],
  ])("worker socket of %s is %s", (api, worker) => expect(cniWorkerSocket(api)).toBe(worker));
  it.each([
    [{ env: { CNI_COMMAND: "ADD" }, stdin: "{}" }, undefined],
    [{ env: { CNI_COMMAND: "ADD", PATH: "/bin" }, stdin: "{}" }, /env\.PATH is not accepted/],
    [{ env: { CNI_COMMAND: 1 }, stdin: "{}" }, /env\.CNI_COMMAND is not accepted/],
    [{ env: [], stdin: "{}" }, /the body must be/],
    [{ env: {} }, /the body must be/],
    [null, /the body must be/],
  ])("parseCniCall(%j)", (body, error) => {
    if (error === undefined) expect(parseCniCall(body)).toEqual(body);
    else expect(() => parseCniCall(body)).toThrow(error);
  });
});

describe("parseResponse", () => {
  const answer = JSON.stringify({ exitCode: 1, stdout: '{"code":11}\n' });
  it.each([
    ["content-length", http("200 OK", answer), { kind: "answered", response: { exitCode: 1, stdout: '{"code":11}\n' } }],
    ["chunked", http("200 OK", `${Buffer.byteLength(answer).toString(16)}\r\n${answer}\r\n0\r\n\r\n`, "Transfer-Encoding: chunked"), { kind: "answered", response: { exitCode: 1, stdout: '{"code":11}\n' } }],
  ])("reads a %s answer", (_name, raw, expected) => expect(parseResponse(Buffer.from(raw), "/s")).toEqual(expected));
  it.each([
    ["404 (an agent without the route)", http("404 Not Found", '{"title":"Not Found"}'), "unavailable", /HTTP 404/],
    ["400", http("400 Bad Request", "{}"), "unavailable", /HTTP 400/],
    ["no answer at all", "", "lost", /without an answer/],
    ["half a header", "HTTP/1.1 200 OK\r\nContent-Le", "lost", /without an answer/],
    ["a body that is not the answer", http("200 OK", '{"exitCode":"0"}'), "lost", /unreadable/],
    ["a body cut short", http("200 OK", answer).slice(0, -5), "lost", /unreadable/],
  ])("%s", (_name, raw, kind, reason) => {
    const outcome = parseResponse(Buffer.from(raw), "/s");
    expect(outcome.kind).toBe(kind);
    expect(outcome.kind !== "answered" && outcome.reason).toMatch(reason);
  });
});

describe("delegate (node:net transport)", () => {
  it("sends POST /v1/cni with {env, stdin} and returns the answer", async () => {
    const agent = await serve("ok.sock", () => http("200 OK", JSON.stringify({ exitCode: 0, stdout: "{}\n" })));
    const outcome = await delegate(agent.path, { CNI_COMMAND: "DEL" }, '{"cniVersion":"1.1.0"}');
    expect(outcome).toEqual({ kind: "answered", response: { exitCode: 0, stdout: "{}\n" } });
    const request = agent.requests[0]!;
    expect(request.startsWith("POST /v1/cni HTTP/1.1\r\n")).toBe(true);
    expect(JSON.parse(request.slice(request.indexOf("\r\n\r\n") + 4))).toEqual({ env: { CNI_COMMAND: "DEL" }, stdin: '{"cniVersion":"1.1.0"}' });
    agent.server.close();
  });
  it("a missing socket is unavailable (ENOENT): nothing was sent", async () => {
    const outcome = await delegate(join(dir, "missing.sock"), {}, "{}");
    expect(outcome.kind).toBe("unavailable");
    expect(outcome.kind !== "answered" && outcome.reason).toMatch(/ENOENT/);
  });
  it("an agent that drops the connection after the request is lost", async () => {
    const agent = await serve("drop.sock", () => undefined);
    const outcome = await delegate(agent.path, { CNI_COMMAND: "ADD" }, "{}");
    expect(outcome.kind).toBe("lost");
    agent.server.close();
  });
  it("an agent that never answers is lost after the timeout", async () => {
    const path = join(dir, "silent.sock");
    const server = createServer(() => {});
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const outcome = await delegate(path, {}, "{}", 50);
    expect(outcome.kind).toBe("lost");
    expect(outcome.kind !== "answered" && outcome.reason).toMatch(/did not answer within 50 ms/);
    server.close();
  });
  it("an answer over MAX_ANSWER_BYTES is lost, not buffered", async () => {
    const agent = await serve("endless.sock", () => http("200 OK", "x".repeat(MAX_ANSWER_BYTES + 1)));
    const outcome = await delegate(agent.path, { CNI_COMMAND: "ADD" }, "{}");
    expect(outcome).toEqual({ kind: "lost", reason: `the agent at ${agent.path} sent an answer over ${MAX_ANSWER_BYTES} bytes` });
    agent.server.close();
  });
  it.each([
    [{}, 120_000],
    [{ FLATNET_CNI_TIMEOUT_MS: "300" }, 300],
    [{ FLATNET_CNI_TIMEOUT_MS: "0" }, 120_000],
    [{ FLATNET_CNI_TIMEOUT_MS: "soon" }, 120_000],
  ])("the deadline from %j is %i ms", (env, ms) => {
    expect(delegateTimeoutMs(env)).toBe(ms);
  });
});
