import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

// The CNI worker in serve mode (bin.ts with FLATNET_CNI_SERVE), run from source with the repository's Bun. An agent
// killed with SIGKILL and restarted starts a new worker on the same socket path while the old one (now an orphan) is
// still serving; the old one then stops. Its stop must not unlink the path, which is the new worker's socket by then.

const agent = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bun = join(agent, "..", "..", "node_modules", ".bin", "bun");

function serve(socket: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(bun, [join(agent, "src", "cni", "bin.ts")], {
      cwd: agent,
      env: { PATH: process.env.PATH, FLATNET_CNI_SERVE: socket, FLATNET_CNI_NETLINK: "0" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.includes(`serving ${socket}`)) resolve(child);
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`worker exited with ${code} before serving: ${stderr}`)));
  });
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

function status(socket: string, method = "GET", path = "/nothing"): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(!existsSync(bun))("CNI worker socket", () => {
  let dir = "";
  const children: ChildProcess[] = [];
  afterEach(async () => {
    await Promise.all(children.splice(0).map(stopped));
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("an old worker stopping after a new one took over the path leaves the new one's socket in place", async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-tz-serve-"));
    const socket = join(dir, "agent-cni.sock");
    const old = await serve(socket);
    children.push(old);
    const fresh = await serve(socket); // unlinks the old worker's socket and listens on the path
    children.push(fresh);
    await stopped(old);
    expect(existsSync(socket)).toBe(true);
    expect(await status(socket)).toBe(404); // the new worker answers (it serves only POST /v1/cni)
  });

  it("a worker that stops removes its own socket", async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-tz-serve-"));
    const socket = join(dir, "agent-cni.sock");
    const only = await serve(socket);
    children.push(only);
    expect(await status(socket)).toBe(404);
    await stopped(only);
    expect(existsSync(socket)).toBe(false);
  });

  it("the socket is root's alone (0600) and serves only POST /v1/cni (docs/security.md, CNI plugin)", async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-tz-serve-"));
    const socket = join(dir, "agent-cni.sock");
    children.push(await serve(socket));
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(socket).uid).toBe(process.getuid?.());
    for (const [method, path] of [["GET", "/v1/cni"], ["PUT", "/v1/cni"], ["POST", "/v1/cni/x"], ["POST", "/v1/state"], ["GET", "/"]] as const) {
      expect(await status(socket, method, path), `${method} ${path}`).toBe(404);
    }
  });

  // Issue 14 item 10: a body larger than MAX_CALL_BYTES is refused with 413, announced or streamed, and never buffered.
  it.each([
    ["announced by Content-Length", { "content-length": String(1 << 30) }],
    ["streamed chunked", { "transfer-encoding": "chunked" }],
  ])("a call body over the limit, %s, is answered 413 and the worker keeps serving", async (_name, headers) => {
    dir = mkdtempSync(join(tmpdir(), "fn-tz-serve-"));
    const socket = join(dir, "agent-cni.sock");
    children.push(await serve(socket));
    const answered = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ socketPath: socket, path: "/v1/cni", method: "POST", headers }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      const chunk = Buffer.alloc(1 << 20, 0x20);
      // 16 MiB at most, each chunk written once the previous one drained: the answer comes well before the end.
      let sent = 0;
      const more = () => {
        while (sent < 16 && !req.destroyed) {
          sent++;
          if (!req.write(chunk)) return void req.once("drain", more);
        }
        req.end();
      };
      more();
    });
    expect(answered.status).toBe(413);
    expect(JSON.parse(answered.body)).toMatchObject({ status: 413, detail: `a CNI call is at most ${8 << 20} bytes` });
    expect(await status(socket)).toBe(404);
  });
});
