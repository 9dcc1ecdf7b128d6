import { type CommandResult, readInNetns } from "./exec.ts";

/** The connection tracking table of `netns`, read-only (`conntrack -L -o extended`); a missing tool is exit 127. */
export function listConntrack(netns: string): Promise<CommandResult> {
  return readInNetns({ name: netns }, "conntrack", ["-L", "-o", "extended"]);
}
