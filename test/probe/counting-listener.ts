import { createSocket } from "node:dgram";
import { createServer } from "node:net";

// A counting listener for the dial-guard tests: listens on each `tcp:IP:PORT` / `udp:IP:PORT` argument inside the
// namespace it runs in (`ip netns exec`), prints one ready line, then one JSON line per connection or datagram.

const report = (listener: string, from: string): void => void process.stdout.write(`${JSON.stringify({ hit: listener, from })}\n`);
await Promise.all(
  process.argv.slice(2).map((spec) => {
    const [proto, ...rest] = spec.split(":");
    const port = Number(rest.pop());
    const host = rest.join(":");
    return new Promise<void>((resolve, reject) => {
      if (proto === "tcp") {
        const server = createServer((socket) => {
          report(spec, socket.remoteAddress ?? "");
          socket.destroy();
        });
        server.once("error", reject);
        server.listen(port, host, () => resolve());
      } else {
        const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
        socket.on("message", (_message, rinfo) => report(spec, rinfo.address));
        socket.once("error", reject);
        socket.bind(port, host, () => resolve());
      }
    });
  }),
);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once("SIGTERM", () => process.exit(0));
