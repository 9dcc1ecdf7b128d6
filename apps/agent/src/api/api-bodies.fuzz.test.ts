import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROBE_TOKEN_HEADER } from "../probe/dial-policy.ts";
import { type Responder, startResponder } from "../probe/responder.ts";
import { probeRoutes } from "./routes-probe.ts";
import { type ApiServer, createApiServer } from "./server.ts";

// Fuzz of the agent API's and the responder's request bodies (issue 14): whatever arrives, the answer is a 4xx
// problem+json naming what is wrong, never a 5xx, a crash or a hang, and nothing is dialled (every body fails validation
// or names no target). On unix sockets of a temp dir: nothing reaches a network.

interface Answer {
  status: number;
  type: string;
  body: string;
}

function post(socketPath: string, path: string, payload: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "POST", headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) }, timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), body }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer to POST ${path} within 5 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

// JSON values, JSON-ish text, and bodies shaped like the real ones with fuzzed fields.
const options = fc.record({
  udpCount: fc.oneof(fc.integer(), fc.double(), fc.string()),
  tcpCount: fc.integer({ min: -5, max: 200 }),
  mtuTcpBytes: fc.oneof(fc.integer({ min: -1, max: 1 << 25 }), fc.constant(65_537)),
  podMtu: fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.constant(9217)),
  timeoutMs: fc.integer({ min: -1, max: 100_000 }),
  retries: fc.integer({ min: -1, max: 9 }),
  concurrency: fc.integer({ min: -1, max: 2_000 }),
}, { requiredKeys: [] });
const target = fc.record({ pairId: fc.string(), ip: fc.oneof(fc.string(), fc.ipV4(), fc.ipV6(), fc.constant("localhost")), port: fc.oneof(fc.integer(), fc.string()) }, { requiredKeys: [] });
const dialBody = fc.record({ v: fc.oneof(fc.constant(1), fc.anything()), runId: fc.string(), options, targets: fc.array(target, { maxLength: 5 }) }, { requiredKeys: [] });
const bodies = fc.oneof(
  fc.json(),
  fc.string(),
  dialBody.map((b) => JSON.stringify(b)),
  fc.record({ src: fc.record({ pod: fc.string(), node: fc.string(), ip: fc.string(), port: fc.integer() }, { requiredKeys: [] }), request: dialBody }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  fc.record({ inventory: fc.anything(), agents: fc.dictionary(fc.string(), fc.anything()), mode: fc.string(), options }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
);

describe("fuzz: agent API and responder bodies", () => {
  let dir: string;
  let api: ApiServer;
  let responder: Responder;
  const apiSocket = (): string => join(dir, "node-1.sock");
  const responderSocket = (): string => join(dir, "responder.sock");

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-hn-fuzz-"));
    api = createApiServer({ socketPath: apiSocket(), routes: probeRoutes(() => ({ name: "node-1", netns: "fn-hn-none", underlayDevice: "eth0", socketPath: apiSocket() })) });
    await api.listen();
    // Loopback only, on a port the kernel picks for TCP; the fuzz goes through the control socket.
    responder = await startResponder({
      identity: { pod: "fn-hn-fuzz", node: "node-1", podIps: ["127.0.0.1"], nodePodCidrs: [], nodeIps: [] },
      port: 0,
      listenAddresses: ["127.0.0.1"],
      controlSocket: responderSocket(),
      dial: { token: "fn-hn-fuzz-token-0123456789", allowedCidrs: [] },
    });
  });
  afterAll(async () => {
    await api.close();
    await responder.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const isProblem = (answer: Answer): boolean => answer.status >= 400 && answer.status < 500 && answer.type.startsWith("application/problem+json") && JSON.parse(answer.body).detail !== undefined;

  it.each([["/v1/probe/dial"], ["/v1/probe/run"]])("POST %s: every malformed body gets a 4xx problem", async (path) => {
    await fc.assert(
      fc.asyncProperty(bodies, async (payload) => {
        const answer = await post(apiSocket(), path, payload);
        // A body that passes validation may still name a source no responder answers for: 400 or 502, never 500.
        if (answer.status === 502 || answer.status === 200) return;
        expect(isProblem(answer), `${answer.status} ${answer.body}`).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("POST /v1/dial on a responder: every malformed body gets a 4xx problem, and a dial it accepts names no target", async () => {
    await fc.assert(
      fc.asyncProperty(bodies, async (payload) => {
        const answer = await post(responderSocket(), "/v1/dial", payload, { [PROBE_TOKEN_HEADER]: "fn-hn-fuzz-token-0123456789" });
        if (answer.status === 200) {
          expect(answer.body).toBe(""); // a valid request the fuzz produced: no target to dial
          return;
        }
        expect(isProblem(answer), `${answer.status} ${answer.body}`).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
