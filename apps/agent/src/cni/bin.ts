// The entry of the compiled CNI plugin binary (`bun build --compile`, scripts/build-cni.mjs): no CLI, no commander.
// No top-level await: --bytecode compiles to CommonJS. The result is written synchronously, then the process exits at
// once instead of waiting for the event loop to wind down (a plugin is a process per call: every millisecond counts).
//
// Fast path: a netconf naming the agent's socket (`agentSocket`) sends the call to the agent (delegate.ts) and prints
// its answer; only node:fs and node:net are loaded. The plugin proper (zod, IPAM store, iproute2) is imported lazily,
// when the agent is not there (DEL must work while it is down) or the netconf names no agent.
import { agentSocketOf, cniEnvOf, delegate, delegateTimeoutMs, netnsIdentityOf } from "./delegate.ts";

// Bun's own stdin/stdout: importing node:fs costs the fast path ~2.5 ms of start-up (measured: a compiled binary that
// reads stdin with node:fs 8.7 ms, with Bun.stdin 7.1 ms, one that only exits 5.9 ms).
interface BunIo {
  stdin: { text(): Promise<string> };
  stdout: unknown;
  write(destination: unknown, data: string): Promise<number>;
}
const bun = (globalThis as { Bun?: BunIo }).Bun;

async function readStdin(): Promise<string> {
  try {
    if (bun !== undefined) return await bun.stdin.text(); // read for every command, VERSION included, as skel does
    const { readFileSync } = await import("node:fs");
    return readFileSync(0, "utf8");
  } catch {
    return "";
  }
}

async function print(text: string): Promise<void> {
  if (bun !== undefined) {
    await bun.write(bun.stdout, text); // resolves once all of it is written: nothing is lost at exit
    return;
  }
  const { writeSync } = await import("node:fs");
  const bytes = Buffer.from(text, "utf8");
  let written = 0;
  while (written < bytes.length) written += writeSync(1, bytes, written);
}

async function inProcess(stdin: string): Promise<number> {
  const { runCniProcess } = await import("./main.ts");
  return runCniProcess(stdin);
}

async function run(): Promise<number> {
  const stdin = await readStdin();
  const socket = agentSocketOf(stdin);
  const command = process.env.CNI_COMMAND;
  // FLATNET_CNI_IN_PROCESS: set by the native client when the worker declined the call (it cannot see CNI_NETNS).
  if (socket === undefined || command === "VERSION" || process.env.FLATNET_CNI_IN_PROCESS === "1") return inProcess(stdin);
  const netns = await netnsIdentityOf(process.env.CNI_NETNS);
  const outcome = await delegate(socket, cniEnvOf(process.env), stdin, delegateTimeoutMs(process.env), netns);
  if (outcome.kind === "answered") {
    if (process.env.FLATNET_CNI_TRACE) process.stderr.write(`flatnet-cni: delegated to ${socket}\n`);
    await print(outcome.response.stdout);
    return outcome.response.exitCode;
  }
  if (process.env.FLATNET_CNI_TRACE) process.stderr.write(`flatnet-cni: in-process (${outcome.reason})\n`);
  if (outcome.kind === "lost" && command === "ADD") {
    // The agent went away mid-ADD: it may have allocated or attached. Answer "try again"; the runtime's DEL (which
    // falls back to in-process work while the agent is down) and the retried ADD converge, as after a plugin crash.
    const requested = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion; // JSON: agentSocketOf parsed it already
    const cniVersion = typeof requested === "string" ? requested : "1.1.0";
    await print(JSON.stringify({ cniVersion, code: 11, msg: `the flatnet agent went away during ADD (${outcome.reason}); try again` }) + "\n");
    return 1;
  }
  // Unavailable (nothing done), or a lost idempotent command (DEL, CHECK, GC, STATUS): do it here.
  return inProcess(stdin);
}

async function main(): Promise<number> {
  const serve = process.env.FLATNET_CNI_SERVE;
  if (serve !== undefined && serve !== "") {
    // Serve mode: the agent's CNI worker (cni/worker.ts).
    const { serveCni } = await import("./serve.ts");
    const parent = Number(process.env.FLATNET_CNI_PARENT);
    return serveCni(serve, Number.isInteger(parent) && parent > 0 ? parent : undefined);
  }
  return run();
}

void main().then((code) => process.exit(code));
