// A stand-in for `flatnet agent`'s API in the probe tests: serves only the probe routes on a unix socket,
// from inside a node namespace (run with `ip netns exec <node-ns> node --import tsx agent-relay-server.ts`).
import { createServer } from "node:http";
import { unlinkSync } from "node:fs";
import { handleProbeRequest, probeRoutes } from "../../apps/agent/src/api/routes-probe.ts";

const [node, netns, socket] = process.argv.slice(2);
if (!node || !netns || !socket) {
  process.stderr.write("usage: agent-relay-server.ts NODE NETNS SOCKET\n");
  process.exit(2);
}
const routes = probeRoutes({ node, netns, underlayDevice: "eth0" });
const server = createServer((req, res) => {
  void handleProbeRequest(routes, req, res).then((handled) => {
    if (!handled) {
      res.writeHead(404, { "content-type": "application/problem+json" });
      res.end(JSON.stringify({ title: "ERR_NOT_FOUND", status: 404, detail: `no route ${req.method} ${req.url}` }));
    }
  });
});
try {
  unlinkSync(socket);
} catch {
  // no stale socket
}
server.listen(socket, () => process.stdout.write(`${JSON.stringify({ ready: true, node, socket })}\n`));
process.once("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
