import { execFileSync, spawn } from "node:child_process";
import { nftTraceOutcomes, parseNftTrace, type NftTraceEvent, type NftTraceOutcome } from "@flatnet/core";
import { assertNetnsName, execInNetns } from "./exec.ts";

// `--trace`: a live `meta nftrace` of one probe packet in a node's namespace. A table of its own (`inet fn_trace`)
// marks the probe's 5-tuple in prerouting and output; `nft -a monitor trace` reports every chain the packet passes.
// The table is ALWAYS removed, also when sending or monitoring fails, and on SIGINT/SIGTERM (then the process exits).

export const NFT_TRACE_TABLE = "fn_trace";

export interface TracedFlow {
  protocol: "udp" | "tcp";
  src?: string;
  dst: string;
  dport: number;
}

export interface NftTraceResult {
  events: NftTraceEvent[];
  outcomes: NftTraceOutcome[];
}

export interface NftTraceOptions {
  /** How long to wait for the packet's trace at most (the probe is resent until its first line shows). */
  timeoutMs?: number;
  /** Resend interval until the monitor reports the packet (the monitor's subscription has no ready signal). */
  resendMs?: number;
  /** Quiet time after the last trace line before the trace counts as complete (unless a drop ended it). */
  settleMs?: number;
}

/** The nft match of one flow: `ip daddr D ip saddr S udp dport P` (ip6 for IPv6 addresses). */
export function flowMatch(flow: TracedFlow): string {
  const fam = flow.dst.includes(":") ? "ip6" : "ip";
  return [`${fam} daddr ${flow.dst}`, flow.src === undefined ? "" : `${fam} saddr ${flow.src}`, `${flow.protocol} dport ${flow.dport}`].filter(Boolean).join(" ");
}

/** Trace one packet of `flow` through `netns`'s netfilter while `send` sends it (resent until seen). */
export async function traceOnePacket(netns: string, flow: TracedFlow, send: () => Promise<void>, options: NftTraceOptions = {}): Promise<NftTraceResult> {
  assertNetnsName(netns);
  const timeoutMs = options.timeoutMs ?? 3000;
  const resendMs = options.resendMs ?? 100;
  const settleMs = options.settleMs ?? 200;
  const target = { name: netns };
  const existing = await execInNetns(target, "nft", ["list", "table", "inet", NFT_TRACE_TABLE]);
  if (existing.exitCode === 0) throw new Error(`netns ${netns} already has table inet ${NFT_TRACE_TABLE}: another trace is running (or was left behind: nft delete table inet ${NFT_TRACE_TABLE})`);
  const match = flowMatch(flow);
  const table = `table inet ${NFT_TRACE_TABLE} {\n  chain prerouting { type filter hook prerouting priority -400; ${match} meta nftrace set 1; }\n  chain output { type filter hook output priority -400; ${match} meta nftrace set 1; }\n}\n`;
  const added = await execInNetns(target, "nft", ["-f", "-"], table);
  if (added.exitCode !== 0) throw new Error(`nft could not add table inet ${NFT_TRACE_TABLE} in ${netns}: ${added.stderr.trim()}`);
  const monitor = spawn("ip", ["netns", "exec", netns, "nft", "-a", "monitor", "trace"], { stdio: ["ignore", "pipe", "pipe"] });
  // Interrupted: remove the table before exiting (synchronously: the event loop ends with the handler).
  const interrupted = (signal: NodeJS.Signals): void => {
    if (monitor.exitCode === null) monitor.kill("SIGTERM");
    try {
      execFileSync("ip", ["netns", "exec", netns, "nft", "delete", "table", "inet", NFT_TRACE_TABLE], { stdio: "ignore" });
    } finally {
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    let output = "";
    let changed: () => void = () => undefined;
    monitor.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      changed();
    });
    const exited = new Promise<void>((resolve) => monitor.once("close", () => resolve()));
    const wait = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        changed = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    const deadline = Date.now() + timeoutMs;
    // Until the monitor shows the packet: (re)send. Then until a drop ends the trace or it goes quiet.
    while (!/ packet: /.test(output) && Date.now() < deadline) {
      await send().catch(() => undefined); // a dropped send (EPERM) is what we trace
      await Promise.race([wait(resendMs), exited]);
    }
    let before = -1;
    while (before !== output.length && Date.now() < deadline && !nftTraceOutcomes(parseNftTrace(output)).some((o) => o.action === "drop")) {
      before = output.length;
      await Promise.race([wait(settleMs), exited]);
    }
    const events = parseNftTrace(output);
    return { events, outcomes: nftTraceOutcomes(events) };
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    if (monitor.pid !== undefined && monitor.exitCode === null) monitor.kill("SIGTERM");
    const removed = await execInNetns(target, "nft", ["delete", "table", "inet", NFT_TRACE_TABLE]);
    if (removed.exitCode !== 0) throw new Error(`nft could not remove table inet ${NFT_TRACE_TABLE} in ${netns}: ${removed.stderr.trim()}`);
  }
}

/** Sends one UDP datagram from `netns` to `dst`:`port` (bash's /dev/udp), as a probe's flow would: for `traceOnePacket`. */
export async function sendUdpDatagram(netns: string, dst: string, port: number): Promise<void> {
  assertNetnsName(netns);
  await execInNetns({ name: netns }, "bash", ["-c", `echo flatnet-trace > /dev/udp/${dst}/${port}`]);
}
