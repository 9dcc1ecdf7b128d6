import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiProblem, type ApiServer, createApiServer } from "./server.ts";

function call(socketPath: string, method: string, path: string, body?: string) {
  return new Promise<{ status: number; type: string; body: string; allow?: string }>((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body: text, allow: res.headers.allow as string | undefined }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("createApiServer on a unix socket", () => {
  let dir: string;
  let socketPath: string;
  let server: ApiServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-ta-api-"));
    socketPath = join(dir, "agent.sock");
    server = createApiServer({
      socketPath,
      routes: [
        { method: "GET", path: "/v1/items/:id", handler: (req) => ({ body: { id: req.params.id, verbose: req.query.get("verbose") } }) },
        { method: "POST", path: "/v1/items", handler: async (req) => ({ status: 201, body: { got: await req.json() } }) },
        { method: "GET", path: "/text", handler: () => ({ text: "plain\n", contentType: "text/plain; version=0.0.4" }) },
        { method: "GET", path: "/gone", handler: () => { throw new ApiProblem(410, "Gone", "item 7 was removed", { item: 7 }); } },
        { method: "GET", path: "/bug", handler: () => { throw new Error("secret internal detail"); } },
      ],
    });
    await server.listen();
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ["GET", "/v1/items/a%20b?verbose=1", undefined, 200, "application/json", { id: "a b", verbose: "1" }],
    ["POST", "/v1/items", '{"x":1}', 201, "application/json", { got: { x: 1 } }],
    ["POST", "/v1/items", "{not json", 400, "application/problem+json", { type: "about:blank", title: "Bad Request", status: 400, detail: expect.stringContaining("request body is not JSON") }],
    ["GET", "/gone", undefined, 410, "application/problem+json", { type: "about:blank", title: "Gone", status: 410, detail: "item 7 was removed", item: 7 }],
    ["GET", "/bug", undefined, 500, "application/problem+json", { type: "about:blank", title: "Internal Server Error", status: 500, detail: "the agent could not answer this request; see its log" }],
    ["GET", "/v1/items/%E0%A4%A", undefined, 400, "application/problem+json", { type: "about:blank", title: "Bad Request", status: 400, detail: 'path segment "%E0%A4%A" is not valid percent-encoding' }],
    ["GET", "/nope", undefined, 404, "application/problem+json", { type: "about:blank", title: "Not Found", status: 404, detail: "no route for GET /nope" }],
    ["DELETE", "/v1/items", undefined, 405, "application/problem+json", { type: "about:blank", title: "Method Not Allowed", status: 405, detail: "DELETE is not allowed on /v1/items; allowed: POST" }],
  ])("%s %s -> %i", async (method, path, body, status, type, expected) => {
    const res = await call(socketPath, method, path, body);
    expect(res.status).toBe(status);
    expect(res.type).toBe(type);
    expect(JSON.parse(res.body)).toEqual(expected);
    expect(res.body).not.toContain("secret internal detail");
  });

  it("sends text as is with its content type", async () => {
    expect(await call(socketPath, "GET", "/text")).toMatchObject({ status: 200, type: "text/plain; version=0.0.4", body: "plain\n" });
  });

  it("refuses to listen on a path that is not a socket, naming it", async () => {
    writeFileSync(join(dir, "file"), "keep me");
    const other = createApiServer({ socketPath: join(dir, "file"), routes: [] });
    await expect(other.listen()).rejects.toThrow(`API socket path "${join(dir, "file")}" exists and is not a socket`);
  });

  it("replaces the socket a crashed agent left behind", async () => {
    const stale = join(dir, "stale.sock");
    const child = spawn(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(stale)})`], { stdio: "ignore" });
    for (let i = 0; i < 2_000 && !existsSync(stale); i++) await new Promise((r) => setTimeout(r, 5));
    process.kill(child.pid!, "SIGKILL"); // no chance to unlink its socket
    await new Promise((r) => child.once("exit", r));
    expect(existsSync(stale)).toBe(true);
    const restarted = createApiServer({ socketPath: stale, routes: [{ method: "GET", path: "/healthz", handler: () => ({ body: { status: "ok" } }) }] });
    await restarted.listen();
    expect((await call(stale, "GET", "/healthz")).status).toBe(200);
    await restarted.close();
  });

  it("refuses a socket another process is serving", async () => {
    const second = createApiServer({ socketPath, routes: [] });
    await expect(second.listen()).rejects.toThrow(`API socket "${socketPath}" is served by a running process`);
    expect((await call(socketPath, "GET", "/text")).status).toBe(200); // the first server keeps its socket
  });

  it("creates its socket for owner and group only, whatever the umask, and leaves the umask as it was", async () => {
    const previous = process.umask(0);
    try {
      const open = createApiServer({ socketPath: join(dir, "open.sock"), routes: [] });
      await open.listen();
      expect(statSync(join(dir, "open.sock")).mode & 0o777).toBe(0o660);
      expect(process.umask()).toBe(0);
      await open.close();
    } finally {
      process.umask(previous);
    }
  });

  it("a read-only API (the evidence socket) may be opened to every local reader with socketMode, and only then", async () => {
    const previous = process.umask(0o077);
    try {
      const evidence = createApiServer({ socketPath: join(dir, "evidence.sock"), routes: [], socketMode: 0o666 });
      await evidence.listen();
      expect(statSync(join(dir, "evidence.sock")).mode & 0o777).toBe(0o666);
      expect(process.umask()).toBe(0o077);
      await evidence.close();
    } finally {
      process.umask(previous);
    }
  });

  it("closes a connection that sends no request (issue 14.10: idle timeout), while one streaming an answer stays", async () => {
    const idle = createApiServer({
      socketPath: join(dir, "idle.sock"),
      routes: [{ method: "GET", path: "/slow", handler: () => ({ stream: (async function* () {
        yield "one\n";
        await new Promise((r) => setTimeout(r, 300));
        yield "two\n";
      })() }) }],
      limits: { waitMs: 100, maxConnections: 8 },
    });
    await idle.listen();
    try {
      const silent = connect(join(dir, "idle.sock"));
      silent.on("error", () => undefined);
      await new Promise((resolve) => silent.once("close", resolve));
      expect(silent.closed).toBe(true);
      // Busy for longer than the wait: an answer in progress is never cut.
      expect(await call(join(dir, "idle.sock"), "GET", "/slow")).toMatchObject({ status: 200, body: "one\ntwo\n" });
    } finally {
      await idle.close();
    }
  });
});
