import type { Server, ServerResponse } from "node:http";
import type { ListenOptions, Socket } from "node:net";

// Bounds what idle or slow clients can hold on an HTTP server (issue 14.3). Node's own headersTimeout is only
// checked every connectionsCheckingInterval and never covers a connection that sends nothing, and maxConnections
// refuses the newest connection, which is the one a liveness probe just opened.

export interface ConnectionLimits {
  /** A connection must complete its request headers within this long of opening or of its last response ending. */
  waitMs: number;
  /** Beyond this many open connections, the oldest one not serving a request is closed to admit the new one. */
  maxConnections: number;
}

/** The limits of a listener reachable from a network (metrics, probe responders). */
export const NETWORK_LISTENER_LIMITS: ConnectionLimits = { waitMs: 5_000, maxConnections: 64 };

/** Stops listening and closes every open connection, idle or not; resolves once the server has closed. */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Listens; rejects with the listen error. With `mode`, a unix socket has it from the moment it exists: it is bound
 * synchronously inside listen(), so the umask is restored before any other file is made.
 */
export function listen(server: Server, target: ListenOptions, mode?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const umask = mode === undefined ? undefined : process.umask(0o777 & ~mode);
    try {
      server.listen(target, () => {
        server.off("error", reject);
        resolve();
      });
    } finally {
      if (umask !== undefined) process.umask(umask);
    }
  });
}

/**
 * Close connections that do not finish their request headers within `waitMs` (silent or dripping ones alike), and
 * on overflow evict the oldest idle connection instead of refusing the new one: a new request cannot be starved
 * by idle connections, only by `maxConnections` requests in progress at once.
 */
export function guardConnections(server: Server, limits: ConnectionLimits): void {
  // Insertion order is arrival order: the first idle entry is the oldest.
  const open = new Map<Socket, { busy: number; timer?: ReturnType<typeof setTimeout> }>();
  const wait = (socket: Socket): void => {
    const state = open.get(socket);
    if (state === undefined || state.busy > 0) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => socket.destroy(), limits.waitMs);
    state.timer.unref();
  };
  server.on("connection", (socket: Socket) => {
    open.set(socket, { busy: 0 });
    socket.once("close", () => {
      clearTimeout(open.get(socket)?.timer);
      open.delete(socket);
    });
    wait(socket);
    if (open.size <= limits.maxConnections) return;
    for (const [other, state] of open) {
      if (other !== socket && state.busy === 0) {
        other.destroy();
        return;
      }
    }
    socket.destroy(); // every other connection is serving a request: this is the one over the cap
  });
  server.on("request", (req: { socket: Socket }, res: ServerResponse) => {
    const state = open.get(req.socket);
    if (state === undefined) return;
    state.busy++;
    clearTimeout(state.timer);
    res.once("close", () => {
      state.busy--;
      wait(req.socket);
    });
  });
}
