import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MetricsListener, metricsListenerRoutes, resolveMetricsAddress, startMetricsListener } from "./metrics-listener.ts";
import type { ApiRoute } from "./server.ts";

// The listener on loopback of the test's own namespace (port 0: the kernel picks a free one); the real agent in a
// network namespace of its own is tested in metrics-listener.netns.test.ts.

const ROUTES: ApiRoute[] = [
  { method: "GET", path: "/healthz", handler: () => ({ body: { status: "ok" } }) },
  { method: "GET", path: "/readyz", handler: () => ({ body: { status: "ready" } }) },
  { method: "GET", path: "/metrics", handler: () => ({ text: "flatnet_syncs_total 3\n", contentType: "text/plain; version=0.0.4" }) },
  { method: "GET", path: "/v1/state", handler: () => ({ body: { secret: true } }) },
  { method: "GET", path: "/v1/node", handler: () => ({ body: { name: "n1" } }) },
  { method: "POST", path: "/v1/cni", handler: () => ({ body: { added: true } }) },
  { method: "POST", path: "/metrics", handler: () => ({ body: { reset: true } }) },
];

function call(address: string, method: string, path: string): Promise<{ status: number; type: string; text: string; allow?: string }> {
  const url = new URL(`http://${address}${path}`);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname.replace(/^\[|\]$/g, ""), port: url.port, path, method, timeout: 5_000 }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), text, ...(res.headers.allow ? { allow: String(res.headers.allow) } : {}) }),
      );
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

describe("metricsListenerRoutes", () => {
  it("keeps only GET /metrics, /healthz, /readyz", () => {
    expect(metricsListenerRoutes(ROUTES).map((r) => `${r.method} ${r.path}`)).toEqual(["GET /healthz", "GET /readyz", "GET /metrics"]);
    expect(metricsListenerRoutes([])).toEqual([]);
  });
});

describe("startMetricsListener on loopback", () => {
  let listener: MetricsListener;
  beforeAll(async () => {
    listener = await startMetricsListener({ host: "127.0.0.1", port: 0, routes: ROUTES });
  });
  afterAll(() => listener.close());

  it("reports the bound address", () => {
    expect(listener.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(listener.address).not.toBe("127.0.0.1:0");
  });

  it.each([
    ["/metrics", 200, "text/plain; version=0.0.4", "flatnet_syncs_total 3"],
    ["/healthz", 200, "application/json", '"ok"'],
    ["/readyz", 200, "application/json", '"ready"'],
  ])("GET %s answers %i", async (path, status, type, content) => {
    const res = await call(listener.address, "GET", path);
    expect([res.status, res.type]).toEqual([status, type]);
    expect(res.text).toContain(content);
  });

  it.each([
    ["GET", "/v1/state"],
    ["GET", "/v1/node"],
    ["POST", "/v1/cni"],
    ["GET", "/"],
    ["GET", "/metrics/"],
    ["GET", "/metricsx"],
  ])("%s %s is not there: 404 problem+json", async (method, path) => {
    const res = await call(listener.address, method, path);
    expect([res.status, res.type]).toEqual([404, "application/problem+json"]);
    expect(JSON.parse(res.text)).toMatchObject({ status: 404, title: "Not Found", detail: `no route for ${method} ${path}` });
    expect(res.text).not.toContain("secret");
  });

  it.each([["POST"], ["DELETE"], ["PUT"]])("%s /metrics is refused: 405 with Allow: GET (read-only)", async (method) => {
    const res = await call(listener.address, method, "/metrics");
    expect([res.status, res.type, res.allow]).toEqual([405, "application/problem+json", "GET"]);
  });
});

describe("startMetricsListener under idle and slow connections (issue 14.3)", () => {
  const held: Socket[] = [];
  afterEach(() => {
    for (const socket of held.splice(0)) socket.destroy();
  });
  const open = (address: string): Promise<Socket> => {
    const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => resolve(socket));
      socket.on("error", () => undefined); // evicted connections reset; that is the point
      socket.once("error", reject);
      held.push(socket);
    });
  };
  const closed = (socket: Socket): Promise<void> => new Promise((resolve) => (socket.closed ? resolve() : socket.once("close", () => resolve())));

  it("64 silent and 64 dripping connections held: a new GET /healthz is served 200", async () => {
    const listener = await startMetricsListener({ host: "127.0.0.1", port: 0, routes: ROUTES });
    try {
      for (let i = 0; i < 64; i++) await open(listener.address);
      for (let i = 0; i < 64; i++) (await open(listener.address)).write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: ");
      const res = await call(listener.address, "GET", "/healthz");
      expect([res.status, JSON.parse(res.text)]).toEqual([200, { status: "ok" }]);
    } finally {
      await listener.close();
    }
  });

  it.each([
    ["a silent connection", ""],
    ["a connection dripping its headers", "GET /metrics HTTP/1.1\r\nHost: x\r\n"],
  ])("%s is closed by the listener once its wait runs out", async (_, partial) => {
    const listener = await startMetricsListener({ host: "127.0.0.1", port: 0, routes: ROUTES, limits: { waitMs: 100, maxConnections: 64 } });
    try {
      const socket = await open(listener.address);
      if (partial !== "") {
        socket.write(partial);
        // Keep dripping until the server gives up: activity must not extend the wait.
        const drip = setInterval(() => socket.writable && socket.write("X-A: b\r\n"), 20);
        socket.once("close", () => clearInterval(drip));
      }
      await closed(socket);
      expect(socket.closed).toBe(true);
    } finally {
      await listener.close();
    }
  });

  it("a kept-alive connection serves several requests (the wait restarts after each answer)", async () => {
    const listener = await startMetricsListener({ host: "127.0.0.1", port: 0, routes: ROUTES });
    try {
      const socket = await open(listener.address);
      let text = "";
      socket.on("data", (d: Buffer) => (text += d.toString()));
      const answers = new Promise<void>((resolve) => socket.on("data", () => (text.match(/HTTP\/1\.1 200/g) ?? []).length === 2 && resolve()));
      socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
      await answers;
      expect(text).toContain('"ready"');
    } finally {
      await listener.close();
    }
  });
});

describe("startMetricsListener errors", () => {
  it("names the address when the port is taken (exit 1, not a usage error)", async () => {
    const first = await startMetricsListener({ host: "127.0.0.1", port: 0, routes: ROUTES });
    try {
      const port = Number(first.address.split(":").pop());
      await expect(startMetricsListener({ host: "127.0.0.1", port, routes: ROUTES })).rejects.toMatchObject({
        code: "ERR_METRICS_LISTEN",
        message: expect.stringMatching(new RegExp(`--metrics-address "127\\.0\\.0\\.1:${port}": cannot listen: EADDRINUSE`)),
      });
    } finally {
      await first.close();
    }
  });

  it("names the address when it is on no interface of the namespace", async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface: bind fails, nothing is sent.
    await expect(startMetricsListener({ host: "192.0.2.1", port: 9471, routes: ROUTES })).rejects.toMatchObject({
      code: "ERR_METRICS_LISTEN",
      message: expect.stringContaining('"192.0.2.1:9471": cannot listen: EADDRNOTAVAIL (the address is not on any interface'),
    });
  });
});

describe("resolveMetricsAddress", () => {
  it.each([
    ["nonsense", /--metrics-address "nonsense": must be HOST:PORT/],
    ["10.0.0.5:0", /port 0 is out of range/],
  ])("refuses %s as a usage error", async (text, message) => {
    await expect(resolveMetricsAddress(text, "whatever")).rejects.toMatchObject({ code: "ERR_USAGE", message: expect.stringMatching(message) });
  });

  it("refuses to listen when this process is not in the agent's namespace", async () => {
    await expect(resolveMetricsAddress("127.0.0.1:9471", "fn-tm-not-there")).rejects.toMatchObject({
      code: "ERR_USAGE",
      message: expect.stringContaining('needs the agent to run inside network namespace "fn-tm-not-there"'),
    });
  });
});
