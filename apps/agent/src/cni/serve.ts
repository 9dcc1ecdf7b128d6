import { chmodSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { createServer } from "node:http";
import { dirname } from "node:path";
import { sendProblem } from "../http/problem.ts";
import { CNI_ROUTE, EXIT_CODE_HEADER, RAW_ANSWER, wantsRaw } from "./delegate.ts";
import { createNetlinkPodOps } from "../linux/netlink.ts";
import { type CniCall, createCniService, netnsDeclined, parseCniCall } from "./service.ts";

// The CNI worker: the plugin binary run by the agent with FLATNET_CNI_SERVE=<socket> (cni/worker.ts). It serves the
// fast path's POST /v1/cni (cni/delegate.ts) with the plugin logic kept warm: modules loaded once, each IPAM database
// opened once, `ip` started with Bun.spawn. It stops on SIGTERM/SIGINT and when the agent that started it is gone.

/**
 * The largest call the worker reads (env + stdin as JSON): the native client sends at most 4 MiB of stdin, which JSON
 * escaping can at most double for text. A larger body is refused with 413 (the client then works in-process), never
 * buffered: whoever reaches the socket cannot make the worker run out of memory.
 */
export const MAX_CALL_BYTES = 8 << 20;

/** Serves until stopped; resolves with the exit code. */
export async function serveCni(socketPath: string, parentPid: number | undefined): Promise<number> {
  // ADD's kernel work over rtnetlink from this process (two `ip` processes less); FLATNET_CNI_NETLINK=0 keeps iproute2.
  const netlink = process.env.FLATNET_CNI_NETLINK === "0" ? undefined : await createNetlinkPodOps();
  const service = createCniService(process.env, netlink ?? {});
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  unlinkQuietly(socketPath); // a previous worker's socket (it was killed): nobody listens on it
  const server = createServer((req, res) => {
    if (req.method !== "POST" || req.url !== CNI_ROUTE) return sendProblem(res, 404, "Not Found", `the CNI worker serves only POST ${CNI_ROUTE}`);
    const tooLarge = () => {
      res.setHeader("connection", "close");
      // The answer first, then the connection goes: the rest of the body is never read.
      res.once("finish", () => req.socket.destroy());
      sendProblem(res, 413, "Content Too Large", `a CNI call is at most ${MAX_CALL_BYTES} bytes`);
    };
    if (Number(req.headers["content-length"] ?? 0) > MAX_CALL_BYTES) return tooLarge();
    const chunks: Buffer[] = [];
    let received = 0;
    req.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_CALL_BYTES) {
        chunks.length = 0;
        if (!res.headersSent) tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (received > MAX_CALL_BYTES) return;
      let call: CniCall;
      try {
        call = parseCniCall(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch (error) {
        return sendProblem(res, 400, "Bad Request", (error as Error).message);
      }
      // Not this process's namespace: 409 and nothing done; the client runs the call in-process (it sees the path).
      const declined = netnsDeclined(call);
      if (declined !== undefined) return sendProblem(res, 409, "Conflict", declined);
      service.handle(call.env, call.stdin).then(
        (response) => {
          // The native client (cni/native/flatnet-client.c): the plugin's stdout as is, its exit code in a header.
          const raw = wantsRaw(req.headers.accept);
          const text = raw ? response.stdout : JSON.stringify(response) + "\n";
          const exitCode = raw ? { [EXIT_CODE_HEADER]: String(response.exitCode) } : {};
          res.writeHead(200, { "content-type": raw ? RAW_ANSWER : "application/json", "content-length": Buffer.byteLength(text), ...exitCode });
          res.end(text);
        },
        (error: unknown) => sendProblem(res, 500, "Internal Server Error", String((error as Error)?.message ?? error)),
      );
    });
  });
  return new Promise((resolve) => {
    let watch: ReturnType<typeof setInterval> | undefined;
    let stopped = false;
    // The socket file this worker created. An orphan (its agent was killed) stops up to a second after a restarted
    // agent's new worker replaced the path with its own socket: only our own file may be unlinked then.
    let own: { dev: number; ino: number } | undefined;
    const ownsPath = (): boolean => {
      try {
        const now = statSync(socketPath);
        return own !== undefined && now.dev === own.dev && now.ino === own.ino;
      } catch {
        return false;
      }
    };
    const stop = (code: number) => {
      if (stopped) return;
      stopped = true;
      if (watch !== undefined) clearInterval(watch);
      // Closing a listener removes its path (libuv and Bun unlink it by name), so only a worker whose file still is
      // at the path closes it; otherwise the listener is left to the process's exit, which follows (bin.ts).
      if (ownsPath()) {
        server.close();
        unlinkQuietly(socketPath);
      } else if (own === undefined) {
        server.close(); // never listened: nothing of ours at the path
      }
      service.close();
      resolve(code);
    };
    server.on("error", (error) => {
      process.stderr.write(`flatnet-cni worker: cannot listen on ${socketPath}: ${error.message}\n`);
      stop(1);
    });
    server.listen(socketPath, () => {
      chmodSync(socketPath, 0o600); // root's: whoever can reach it can attach pods
      const created = statSync(socketPath);
      own = { dev: created.dev, ino: created.ino };
      process.stderr.write(`flatnet-cni worker: serving ${socketPath} (ADD via ${netlink === undefined ? "iproute2" : "rtnetlink"})\n`);
    });
    process.on("SIGTERM", () => stop(0));
    process.on("SIGINT", () => stop(0));
    // The agent died without stopping us (SIGKILL): we are reparented; go, so a restarted agent starts a fresh worker.
    if (parentPid !== undefined) watch = setInterval(() => process.ppid !== parentPid && stop(0), 1_000);
  });
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // not there: already gone, or none was left
  }
}
