// Sources of the two small programs the lab checker runs inside pod namespaces with `node -e` (CommonJS).
// They are plain strings so they need no build and no file on disk; each prints one line of JSON or "ready".

/** argv: port. A TCP server that answers each connection with the source address it saw, then closes. */
export const RESPONDER_SOURCE = String.raw`
const net = require("node:net");
const port = Number(process.argv[1]);
const server = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.end(String(socket.remoteAddress).replace(/^::ffff:/, "") + "\n");
});
let fallback = false;
server.on("error", (error) => {
  if (!fallback && error.code === "EAFNOSUPPORT") { fallback = true; server.listen(port, "0.0.0.0"); return; }
  process.stderr.write("responder: " + error.message + "\n");
  process.exit(1);
});
server.on("listening", () => process.stdout.write("ready\n"));
server.listen({ port, host: "::", ipv6Only: false });
process.on("SIGTERM", () => process.exit(0));
`;

/**
 * argv: JSON { port, targets: [{ to, dst, family, expectedSource }] }. For each target: one ICMP echo (iputils
 * ping, retried once) and one TCP exchange with the responder; prints the results as one JSON array.
 */
export const PROBER_SOURCE = String.raw`
const net = require("node:net");
const { execFile } = require("node:child_process");
const { port, targets } = JSON.parse(process.argv[1]);
const ping = (dst) => new Promise((resolve) => {
  execFile("ping", ["-n", "-q", "-c", "1", "-w", "3", dst], (error) => resolve(error ? (error.code === "ENOENT" ? "ping not installed" : "no echo reply") : ""));
});
const tcp = (dst) => new Promise((resolve) => {
  let data = "";
  const socket = net.connect({ host: dst, port, timeout: 4000 });
  socket.setEncoding("utf8");
  socket.on("data", (chunk) => (data += chunk));
  socket.on("timeout", () => { socket.destroy(); resolve({ error: "TCP timeout" }); });
  socket.on("error", (error) => resolve({ error: "TCP " + error.code }));
  socket.on("end", () => resolve({ saw: data.trim() }));
});
// A lost first packet or a starved process on a loaded machine is not a broken network: ICMP gets three tries,
// TCP two, and they run side by side, so a healthy pair costs one round trip and a broken one about 8 s.
const retry = async (attempt, failed, tries) => {
  let result = await attempt();
  for (let i = 1; i < tries && failed(result); i++) result = await attempt();
  return result;
};
async function probe(t) {
  const [icmpError, answer] = await Promise.all([
    retry(() => ping(t.dst), (error) => error === "no echo reply", 3),
    retry(() => tcp(t.dst), (answer) => answer.error !== undefined, 2),
  ]);
  return { ...t, icmpError, tcpError: answer.error, saw: answer.saw };
}
(async () => {
  const results = [];
  const queue = targets.slice();
  const workers = Array.from({ length: Math.min(8, queue.length) }, async () => {
    while (queue.length > 0) results.push(await probe(queue.shift()));
  });
  await Promise.all(workers);
  process.stdout.write(JSON.stringify(results) + "\n");
})();
`;
