import { FLATNET_ROUTE_PROTOCOL, ipFamilyOf, type Plan, type PlanStep, type VxlanDevice, renderStep } from "@flatnet/core";
import type { BatchRunner } from "./batch-session.ts";
import { type BatchFailure, KernelCommandError, type KernelErrorCode, classifyKernelMessage, runBatch } from "./exec.ts";
import { setSysctls } from "./sysctl.ts";

/** One `ip -batch` or `bridge -batch` run, with the plan step each line came from. */
export interface KernelBatch {
  tool: "ip" | "bridge";
  lines: string[];
  steps: PlanStep[]; // steps[i] produced lines[i]
}

export interface ApplyResult {
  /** Tool batches the plan needed (a process each on the one-shot path). */
  batches: number;
  /** Deletions of objects that were already gone: success, counted for the record. */
  alreadyGone: number;
}

/** Groups a plan into consecutive batches per tool, in the plan's order (the core's renderStep gives the lines). */
export function renderKernelBatches(plan: Plan): KernelBatch[] {
  const batches: KernelBatch[] = [];
  for (const step of plan.steps) {
    const tool = step.kind === "fdb" ? "bridge" : "ip";
    let batch = batches.at(-1);
    if (batch === undefined || batch.tool !== tool) {
      batch = { tool, lines: [], steps: [] };
      batches.push(batch);
    }
    if (step.kind === "route" && step.op === "replace" && step.route.family === "IPv6" && step.route.onlink) {
      // Linux refuses an IPv6 onlink gateway that a more specific route reaches through another device, and the
      // route being replaced (host-gw via eth0) is such a route: delete it first (gone already is fine).
      batch.lines.push(`route del ${step.route.dst} proto ${FLATNET_ROUTE_PROTOCOL}`);
      batch.steps.push({ op: "delete", kind: "route", route: step.route });
    }
    const lines = step.kind === "vxlan-device" && step.op === "update" ? renderDeviceUpdate(step.device, step.previous) : renderStep(step);
    for (const line of lines) {
      batch.lines.push(line);
      batch.steps.push(step);
    }
  }
  return batches;
}

/**
 * An in-place device update. Setting the MAC, even to the same value, makes the kernel flush the device's neighbours,
 * permanent ones included (neigh_changeaddr), so the MAC is only written when it changes.
 */
export function renderDeviceUpdate(device: VxlanDevice, previous: VxlanDevice): string[] {
  const kept = new Set(previous.addresses);
  const wanted = new Set(device.addresses);
  const mac = device.mac === previous.mac ? "" : ` address ${device.mac}`;
  return [
    `link set dev ${device.name}${mac} mtu ${device.mtu} up`,
    ...device.addresses.filter((a) => !kept.has(a)).map((a) => `address replace ${a} dev ${device.name}${ipFamilyOf(a) === "IPv6" ? " nodad" : ""}`),
    ...previous.addresses.filter((a) => !wanted.has(a)).map((a) => `address del ${a} dev ${device.name}`),
  ];
}

// The kernel's answers when a deletion finds nothing to delete.
const ALREADY_GONE: ReadonlySet<KernelErrorCode> = new Set(["ESRCH", "ENOENT", "ENODEV"]);

// The fallback runner: one `-force -batch -` process per group.
const oneShot = (netns: string): BatchRunner => (tool, lines) => runBatch(tool, netns, lines, { force: true });

/**
 * Applies a plan to `netns`, each consecutive tool batch through `runner` (default: one process per batch,
 * `ip -force -batch -` / `bridge -force -batch -`; the agent passes long-lived `NetnsBatchSessions`).
 * Deleting what is already gone succeeds; any other refusal throws a KernelCommandError naming the lines, after the
 * remaining batches ran (the next resync retries from a fresh read).
 */
export async function applyKernelPlan(netns: string, plan: Plan, runner: BatchRunner = oneShot(netns)): Promise<ApplyResult> {
  if (plan.steps.length === 0) return { batches: 0, alreadyGone: 0 };
  const batches = renderKernelBatches(plan);
  const refused: BatchFailure[] = [];
  let alreadyGone = 0;
  let lastError: { argv: string[]; exitCode: number; stderr: string } | undefined;
  for (const batch of batches) {
    const result = await runner(batch.tool, batch.lines);
    if (result.exitCode === 0) continue;
    lastError = { argv: [batch.tool, "-n", netns, "-force", "-batch", "-"], exitCode: result.exitCode, stderr: result.stderr };
    for (const failure of result.failures) {
      const step = batch.steps[failure.line - 1];
      if (step !== undefined && step.op === "delete" && ALREADY_GONE.has(classifyKernelMessage(failure.message))) alreadyGone++;
      else refused.push(failure);
    }
    // Some iproute2 commands (neigh, an unknown device name) end the whole batch without a "Command failed" line.
    const last = result.stderr.trim().split("\n").at(-1) ?? "";
    if (last !== "" && !last.startsWith("Command failed ")) refused.push({ line: 0, command: "(the batch ended here)", message: last });
  }
  const device = plan.steps.find((s) => s.kind === "vxlan-device" && (s.op === "create" || s.op === "replace"));
  if (device?.kind === "vxlan-device") {
    // Router advertisements must never configure the VTEP (flannel: accept_ra=0). Slash form keeps "flatnet.1" whole.
    await setSysctls(netns, { [`net/ipv6/conf/${device.device.name}/accept_ra`]: "0" }, { ignoreMissing: true });
  }
  if (refused.length > 0 && lastError !== undefined) {
    throw new KernelCommandError(lastError.argv, lastError.exitCode, lastError.stderr, refused);
  }
  return { batches: batches.length, alreadyGone };
}
