// metrics-listener: issue 14.3's bar. 64 silent + 64 header-dripping connections held against the agent's metrics
// listener (loopback, the real startMetricsListener) for DURATION_S seconds, reopened as the listener closes or evicts
// them; meanwhile one fresh `GET /healthz` a second. Baseline: the same GETs with no attack, measured just before.
// Target: every GET under attack answers 200, the slowest within 2 s.
import { mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startMetricsListener } from "../apps/agent/src/api/metrics-listener.ts";

const DURATION_S = Number(process.env.DURATION_S ?? 60);
const HELD = 64;
const here = fileURLToPath(new URL(".", import.meta.url));

const listener = await startMetricsListener({
  host: "127.0.0.1",
  port: 0,
  routes: [{ method: "GET", path: "/healthz", handler: () => ({ body: { status: "ok" } }) }],
});
const port = Number(listener.address.split(":").pop());

function healthz(): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/healthz", timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
    req.end();
  });
}

async function probeFor(seconds: number): Promise<{ status: number; ms: number }[]> {
  const out: { status: number; ms: number }[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    out.push(await healthz());
    await new Promise((r) => setTimeout(r, 1000));
  }
  return out;
}

let attacking = true;
let reopened = 0;
const held = new Set<Socket>();
function hold(drip: boolean): void {
  if (!attacking) return;
  const socket = connect({ host: "127.0.0.1", port });
  held.add(socket);
  let timer: ReturnType<typeof setInterval> | undefined;
  socket.on("connect", () => {
    if (!drip) return;
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    timer = setInterval(() => socket.write("X-Drip: 1\r\n"), 500);
  });
  socket.on("error", () => undefined);
  socket.on("close", () => {
    clearInterval(timer);
    held.delete(socket);
    reopened++;
    setTimeout(() => hold(drip), 50); // the attacker comes back
  });
}

const baseline = await probeFor(Math.min(10, DURATION_S));
for (let i = 0; i < HELD; i++) hold(false);
for (let i = 0; i < HELD; i++) hold(true);
const attacked = await probeFor(DURATION_S);
attacking = false;
for (const socket of held) socket.destroy();
await listener.close();

const max = (xs: { ms: number }[]) => Math.max(...xs.map((x) => x.ms));
const served = attacked.filter((a) => a.status === 200).length;
const rows = [
  { bench: "metrics-listener", metric: `GET /healthz served under ${HELD} silent + ${HELD} dripping, ${DURATION_S} s`, value: served, unit: `of ${attacked.length}`, target: "all", pass: served === attacked.length },
  { bench: "metrics-listener", metric: "slowest GET /healthz under attack", value: max(attacked), unit: "ms", baseline: max(baseline), ratio: max(attacked) / max(baseline), target: "<= 2000 ms", pass: max(attacked) <= 2000 },
  { bench: "metrics-listener", metric: "attack connections closed by the listener and reopened", value: reopened, unit: "" },
];
for (const r of rows) console.log(`${r.metric}: ${r.value.toFixed?.(1) ?? r.value} ${r.unit}${r.baseline === undefined ? "" : ` (baseline ${r.baseline.toFixed(1)} ms)`}`);
mkdirSync(join(here, "results"), { recursive: true });
writeFileSync(join(here, "results", "metrics-listener.json"), JSON.stringify(rows, null, 2) + "\n");
process.exit(0);
