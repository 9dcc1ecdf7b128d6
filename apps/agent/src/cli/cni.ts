/** Runs the CNI plugin when the process was exec'd by a container runtime (CNI_COMMAND set); returns whether it did. */
export async function runCniIfInvoked(): Promise<boolean> {
  if (process.env.CNI_COMMAND === undefined) return false;
  process.stdout.write(JSON.stringify({ cniVersion: "1.1.0", code: 999, msg: "flatnet CNI plugin: not built yet" }) + "\n");
  process.exitCode = 1;
  return true;
}
