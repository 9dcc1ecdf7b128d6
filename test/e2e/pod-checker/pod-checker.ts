import { spawn, type ChildProcess } from "node:child_process";
import { ipFamilyOf } from "@flatnet/core";
import { LabError } from "../../../apps/agent/src/lab/errors.ts";
import { run } from "../../../apps/agent/src/lab/exec.ts";
import { loadState } from "../../../apps/agent/src/lab/state.ts";
import type { CheckPod, CheckReport, Checker, IpFamily, PairResult } from "./checker.ts";
import { PROBER_SOURCE, RESPONDER_SOURCE } from "./scripts.ts";

export const RESPONDER_PORT = 17070;

interface ProbeOutput {
  to: string;
  dst: string;
  family: IpFamily;
  expectedSource: string;
  icmpError: string;
  tcpError?: string;
  saw?: string;
}

/**
 * The lab's own checker: a responder in every pod answers with the source address it saw, and a prober in every pod
 * pings and connects to every other pod's every IP. Processes run with `ip netns exec` and are stopped by PID.
 */
export class PodChecker implements Checker {
  constructor(private readonly nodeBinary: string = process.execPath) {}

  async check(pods: readonly CheckPod[]): Promise<CheckReport> {
    const started = performance.now();
    const responders: ChildProcess[] = [];
    try {
      await Promise.all(pods.map(async (pod) => responders.push(await this.startResponder(pod))));
      const outputs = await runLimited(pods, 4, (pod) => this.probeFrom(pod, pods));
      const pairs = outputs.flat().map(toPairResult);
      return { ok: pairs.every((pair) => pair.ok), pods: [...pods], pairs, durationMs: performance.now() - started };
    } finally {
      for (const responder of responders) responder.kill("SIGTERM");
    }
  }

  private startResponder(pod: CheckPod): Promise<ChildProcess> {
    const child = spawn("ip", ["netns", "exec", pod.netns, this.nodeBinary, "-e", RESPONDER_SOURCE, String(RESPONDER_PORT)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new Promise((resolve, reject) => {
      let stderr = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new LabError("ERR_LAB_CHECK", `responder in "${pod.netns}" did not start within 10 s`));
      }, 10_000);
      child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      child.stdout?.setEncoding("utf8").once("data", () => {
        clearTimeout(timer);
        resolve(child);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new LabError("ERR_LAB_CHECK", `responder in "${pod.netns}" exited ${code}: ${stderr.trim()}`));
      });
    });
  }

  private async probeFrom(source: CheckPod, pods: readonly CheckPod[]): Promise<ProbeOutput[]> {
    const targets = pods
      .filter((pod) => pod.name !== source.name)
      .flatMap((pod) =>
        pod.ips.map((dst) => {
          const family: IpFamily = ipFamilyOf(dst) ?? "IPv4";
          return { to: pod.name, dst, family, expectedSource: source.ips.find((ip) => ipFamilyOf(ip) === family) ?? "" };
        }),
      );
    if (targets.length === 0) return [];
    const input = JSON.stringify({ port: RESPONDER_PORT, targets });
    const { stdout } = await run("ip", ["netns", "exec", source.netns, this.nodeBinary, "-e", PROBER_SOURCE, input], {
      timeoutMs: 30_000 + targets.length * 1_000,
    });
    return (JSON.parse(stdout) as Omit<ProbeOutput, "from">[]).map((output) => ({ ...output, from: source.name }));
  }
}

function toPairResult(output: ProbeOutput & { from?: string }): PairResult {
  const icmp = output.icmpError === "";
  const tcp = output.tcpError === undefined;
  const noNat = tcp && output.saw === output.expectedSource;
  const errors = [
    icmp ? undefined : `ICMP: ${output.icmpError}`,
    tcp ? undefined : output.tcpError,
    tcp && !noNat ? `NAT: responder saw ${output.saw ?? "nothing"}, expected ${output.expectedSource}` : undefined,
  ].filter((error): error is string => error !== undefined);
  return {
    from: output.from ?? "",
    to: output.to,
    family: output.family,
    dst: output.dst,
    expectedSource: output.expectedSource,
    icmp,
    tcp,
    ...(output.saw === undefined ? {} : { sawSource: output.saw }),
    noNat,
    ok: errors.length === 0,
    ...(errors.length === 0 ? {} : { error: errors.join("; ") }),
  };
}

async function runLimited<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Checks every ordered pair of a lab's pods with `checker` (the PodChecker unless given): an oracle independent of the probe engine. */
export async function labCheck({ stateDir, checker = new PodChecker() }: { stateDir: string; checker?: Checker }): Promise<CheckReport> {
  const state = await loadState(stateDir);
  if (state === undefined) throw new LabError("ERR_LAB_NOT_FOUND", `no lab in "${stateDir}"; run "flatnet lab up" first`);
  return checker.check(state.pods.map(({ name, netns, node, ips }) => ({ name, netns, node, ips })));
}
