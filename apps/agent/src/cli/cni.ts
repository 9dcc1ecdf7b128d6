import { runCniProcess } from "../cni/main.ts";

/** Runs the CNI plugin when the process was exec'd by a container runtime (CNI_COMMAND set); returns whether it did. */
export async function runCniIfInvoked(): Promise<boolean> {
  if (process.env.CNI_COMMAND === undefined) return false;
  process.exitCode = await runCniProcess();
  return true;
}
