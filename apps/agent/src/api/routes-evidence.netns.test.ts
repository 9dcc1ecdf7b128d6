import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeEvidenceSchema } from "@flatnet/core";
import { probeRoutes } from "./routes-probe.ts";
import { createApiServer, type ApiServer } from "./server.ts";

// POST /v1/evidence on a scratch namespace (fn-tr-api): the tracer's evidence of the agent's node, read-only.

const NS = "fn-tr-api";
const root = process.getuid?.() === 0;
if (!root) console.log("evidence route tests skipped: they need root to create a network namespace");

function post(socketPath: string, path: string, body: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: "POST", path, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe.skipIf(!root)("POST /v1/evidence", () => {
  let dir: string;
  let socketPath: string;
  let server: ApiServer;

  beforeAll(async () => {
    execFileSync("ip", ["netns", "add", NS]);
    execFileSync("ip", ["-n", NS, "-batch", "-"], { input: "link set lo up\nlink add eth0 type veth peer name peer0\nlink set eth0 up\nlink set peer0 up\naddr add 172.31.9.1/24 dev eth0\nroute add blackhole 10.244.9.9/32\n" });
    dir = mkdtempSync(join(tmpdir(), "fn-tr-api-"));
    socketPath = join(dir, "agent.sock");
    server = createApiServer({ socketPath, routes: probeRoutes(() => ({ name: "node-9", netns: NS, underlayDevice: "eth0", socketPath })) });
    await server.listen();
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    execFileSync("ip", ["netns", "del", NS]);
  });

  it("answers the route queries with the node's tables, links and sysctls", async () => {
    const res = await post(socketPath, "/v1/evidence", JSON.stringify({ lookups: [{ dst: "10.244.9.9" }, { dst: "172.31.9.7", from: "172.31.9.1" }] }));
    expect(res.status).toBe(200);
    const evidence = nodeEvidenceSchema.parse(JSON.parse(res.body));
    expect(evidence.lookups).toEqual([
      { query: { dst: "10.244.9.9" }, error: "Invalid argument" },
      { query: { dst: "172.31.9.7", from: "172.31.9.1" }, route: { dst: "172.31.9.7", dev: "eth0", type: "unicast", table: "main" } },
    ]);
    expect(evidence.routes.filter((r) => r.type === "blackhole")).toEqual([{ dst: "10.244.9.9", type: "blackhole", protocol: "boot", table: "main", flags: [] }]);
    expect(evidence.links.find((l) => l.name === "eth0")).toMatchObject({ state: "UP", mtu: 1500 });
    expect(evidence.sysctls.ipForward).toBe(0);
    expect([evidence.node, evidence.role]).toEqual(["node-9", "node"]);
  });

  it.each([
    ['{"lookups": [{"from": "10.0.0.1"}]}', 'request body is invalid at "lookups.0.dst": '],
    ['{"lookups": "all"}', 'request body is invalid at "lookups": '],
  ])("a bad body %s gets a problem naming the field", async (body, detail) => {
    const res = await post(socketPath, "/v1/evidence", body);
    expect([res.status, res.type]).toEqual([400, "application/problem+json"]);
    expect(JSON.parse(res.body).detail).toContain(detail);
  });
});
