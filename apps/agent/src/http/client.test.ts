import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJson, getOkJson, isHealthy, tryGetJson, urlHost } from "./client.ts";
import { sendProblem } from "./problem.ts";

const dir = mkdtempSync(join(tmpdir(), "fn-p1-http-"));
const socketPath = join(dir, "api.sock");
let server: Server;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/healthz") return void res.end("ok");
    if (req.url === "/v1/state") return void res.end(JSON.stringify({ node: "node1" }));
    if (req.url === "/text") return void res.end("not json");
    sendProblem(res, 404, "Not Found", `no route for ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe("the agent API client", () => {
  it("reads a JSON body, a text body and a problem body with their status", async () => {
    expect(await getJson({ socketPath }, "/v1/state")).toEqual({ status: 200, body: { node: "node1" } });
    expect(await getJson({ socketPath }, "/text")).toEqual({ status: 200, body: "not json" });
    expect(await getJson({ socketPath }, "/gone")).toEqual({ status: 404, body: { type: "about:blank", title: "Not Found", status: 404, detail: "no route for /gone" } });
  });

  it("getOkJson names the path when the answer is not a 200 with JSON", async () => {
    await expect(getOkJson({ socketPath }, "/v1/state", 1_000)).resolves.toEqual({ node: "node1" });
    await expect(getOkJson({ socketPath }, "/gone", 1_000)).rejects.toThrow("/gone answered HTTP 404");
    await expect(getOkJson({ socketPath }, "/text", 1_000)).rejects.toThrow("/text did not answer JSON");
  });

  it("an endpoint that is not there: tryGetJson gives undefined, isHealthy false", async () => {
    const missing = { socketPath: join(dir, "missing.sock") };
    await expect(tryGetJson(missing, "/healthz")).resolves.toBeUndefined();
    await expect(isHealthy(missing)).resolves.toBe(false);
    await expect(isHealthy({ socketPath })).resolves.toBe(true);
  });

  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["fd00::1", "[fd00::1]"],
    ["node1.example", "node1.example"],
  ])("urlHost(%s) is %s", (host, expected) => {
    expect(urlHost(host)).toBe(expected);
  });
});
