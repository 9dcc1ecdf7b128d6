import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { delegate, netnsIdentityOf, RAW_ANSWER } from "../cni/delegate.ts";
import type { CniService } from "../cni/service.ts";
import { cniRoutes } from "./routes-cni.ts";
import { type ApiServer, createApiServer } from "./server.ts";

// POST /v1/cni on the agent's API: the JSON answer the Bun fast path reads, the raw answer the native client reads,
// and a problem for a malformed call. The service is a stand-in: the plugin logic has its own tests.

describe("POST /v1/cni on the agent API", () => {
  let dir: string;
  let socketPath: string;
  let server: ApiServer;
  const calls: { env: Record<string, string>; stdin: string }[] = [];
  const service: CniService = {
    handle: async (env, stdin) => {
      calls.push({ env, stdin });
      return env.CNI_COMMAND === "DEL" ? { exitCode: 0, stdout: "" } : { exitCode: 1, stdout: '{"cniVersion":"1.1.0","code":4,"msg":"bad"}\n' };
    },
    close: () => {},
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-tf-routes-"));
    socketPath = join(dir, "agent.sock");
    server = createApiServer({ socketPath, routes: cniRoutes(service) });
    await server.listen();
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (body: string, accept?: string) => {
    const response = await fetchUnix(socketPath, body, accept);
    return response;
  };

  // The test's own namespace file: the route (same process) sees it exactly as the "runtime" does.
  const NETNS = "/proc/self/ns/net";

  it("answers the plugin's {exitCode, stdout} to the fast path (delegate)", async () => {
    const netns = await netnsIdentityOf(NETNS);
    const outcome = await delegate(socketPath, { CNI_COMMAND: "ADD", CNI_NETNS: NETNS }, '{"cniVersion":"1.1.0"}', 5_000, netns);
    expect(outcome).toEqual({ kind: "answered", response: { exitCode: 1, stdout: '{"cniVersion":"1.1.0","code":4,"msg":"bad"}\n' } });
    expect(calls.at(-1)).toEqual({ env: { CNI_COMMAND: "ADD", CNI_NETNS: NETNS }, stdin: '{"cniVersion":"1.1.0"}' });
  });

  // Issue 11 item 2: the runtime's side saw another namespace at that path (another mount or PID namespace), or sent
  // no identity: 409, the service is not called, and the client (outcome "unavailable") runs the call itself.
  it.each([
    ["another inode", { dev: 1, ino: 2 }, "for the runtime (another mount or PID namespace)"],
    ["no identity", undefined, "no identity of CNI_NETNS"],
  ])("declines an ADD whose CNI_NETNS is, here, %s", async (_name, netns, reason) => {
    const before = calls.length;
    const outcome = await delegate(socketPath, { CNI_COMMAND: "ADD", CNI_NETNS: NETNS }, '{"cniVersion":"1.1.0"}', 5_000, netns);
    expect(outcome.kind).toBe("unavailable");
    expect(outcome.kind === "unavailable" && outcome.reason).toContain("HTTP 409");
    expect(outcome.kind === "unavailable" && outcome.reason).toContain(reason);
    expect(calls.length).toBe(before);
  });

  it.each([
    ["an error answer", "ADD", '{"cniVersion":"1.1.0","code":4,"msg":"bad"}\n', "1"],
    ["an empty success", "DEL", "", "0"],
  ])("answers raw to the native client: %s", async (_name, command, stdout, exitCode) => {
    const response = await post(JSON.stringify({ env: { CNI_COMMAND: command }, stdin: "{}" }), RAW_ANSWER);
    expect([response.status, response.headers["x-cni-exit-code"], response.headers["content-type"], response.headers["content-length"], response.body]).toEqual([
      200, exitCode, RAW_ANSWER, String(Buffer.byteLength(stdout)), stdout,
    ]);
  });

  it.each([
    ['{"env":{"PATH":"/bin"},"stdin":"{}"}', /env\.PATH is not accepted/],
    ['{"env":{"CNI_COMMAND":"ADD"}}', /the body must be/],
    ["[]", /the body must be/],
  ])("refuses %s with a 400 problem naming the rule", async (body, detail) => {
    const response = await post(body);
    expect(response.status).toBe(400);
    expect(response.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(JSON.parse(response.body).detail).toMatch(detail);
  });
});

async function fetchUnix(socketPath: string, body: string, accept?: string): Promise<{ status: number; headers: Record<string, string | undefined>; body: string }> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (accept !== undefined) headers.accept = accept;
    const req = request({ socketPath, method: "POST", path: "/v1/cni", headers }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string | undefined>, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
