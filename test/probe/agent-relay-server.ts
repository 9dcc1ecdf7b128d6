// A stand-in for `flatnet agent` in the probe tests: the agent's own API server (createApiServer) serving only the
// probe route module, on a unix socket, from inside a node namespace
// (run with `ip netns exec <node-ns> node --import tsx agent-relay-server.ts NODE NETNS SOCKET`).
import { createApiServer } from "../../apps/agent/src/api/server.ts";
import { probeRoutes } from "../../apps/agent/src/api/routes-probe.ts";

const [node, netns, socket] = process.argv.slice(2);
if (!node || !netns || !socket) {
  process.stderr.write("usage: agent-relay-server.ts NODE NETNS SOCKET\n");
  process.exit(2);
}
const server = createApiServer({ socketPath: socket, routes: probeRoutes(() => ({ name: node, netns, underlayDevice: "eth0", socketPath: socket })) });
await server.listen();
process.stdout.write(`${JSON.stringify({ ready: true, node, socket })}\n`);
process.once("SIGTERM", () => {
  void server.close().then(() => process.exit(0));
});
