import { execInNetns, type CommandResult } from "./exec.ts";

/** The connection tracking table of `netns`, read-only (`conntrack -L -o extended`); a missing tool is exit 127. */
export function listConntrack(netns: string): Promise<CommandResult> {
  return execInNetns({ name: netns }, "conntrack", ["-L", "-o", "extended"]).catch((error: Error) => ({ exitCode: 127, stdout: "", stderr: error.message }));
}
