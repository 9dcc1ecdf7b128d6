import { INTERFACE_NAME_RULE, safeParseInterfaceName } from "@flatnet/core";
import { isNetnsPath, NETNS_PATH_RULE } from "../linux/exec.ts";
import { CniCode, CniError } from "./errors.ts";

export const CNI_COMMANDS = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** The CNI_* environment of one invocation, validated for its command. */
export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Path of the container's network namespace; absent for DEL when the runtime no longer has one. */
  netns?: string;
  ifName: string;
  /** CNI_ARGS as key/value pairs ("K8S_POD_NAME=a;K8S_POD_NAMESPACE=b"). */
  args: Record<string, string>;
  path: string[];
}

// SPEC.md "Parameters": the container ID starts alphanumeric, then [A-Za-z0-9_.-].
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function invalidEnv(message: string): CniError {
  return new CniError(CniCode.InvalidEnvironment, message);
}

/** Reads CNI_COMMAND alone: VERSION needs nothing else, and the error for a bad command must not depend on the rest. */
export function parseCniCommand(env: Record<string, string | undefined>): CniCommand {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === "") throw invalidEnv("CNI_COMMAND is not set; it must be one of " + CNI_COMMANDS.join(", "));
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw invalidEnv(`CNI_COMMAND ${JSON.stringify(command)} is not a CNI command; it must be one of ${CNI_COMMANDS.join(", ")}`);
  }
  return command as CniCommand;
}

/** Validates the CNI_* variables the command needs (SPEC.md section 2: ADD/CHECK need all three, DEL tolerates no netns). */
export function parseCniEnv(env: Record<string, string | undefined>): CniEnv {
  const command = parseCniCommand(env);
  const attachment = command === "ADD" || command === "DEL" || command === "CHECK";
  const containerId = env.CNI_CONTAINERID ?? "";
  const ifName = env.CNI_IFNAME ?? "";
  const netns = env.CNI_NETNS === undefined || env.CNI_NETNS === "" ? undefined : env.CNI_NETNS;
  if (attachment) {
    if (containerId === "") throw invalidEnv(`CNI_CONTAINERID is not set; ${command} needs the container ID`);
    if (!CONTAINER_ID.test(containerId)) {
      throw invalidEnv(`CNI_CONTAINERID ${JSON.stringify(containerId)} must start with a letter or digit followed by letters, digits, "_", "." or "-"`);
    }
    if (ifName === "") throw invalidEnv(`CNI_IFNAME is not set; ${command} needs the interface name`);
    if (!safeParseInterfaceName(ifName).success) throw invalidEnv(`CNI_IFNAME ${JSON.stringify(ifName)} is refused: ${INTERFACE_NAME_RULE}`);
    if (command !== "DEL" && netns === undefined) throw invalidEnv(`CNI_NETNS is not set; ${command} needs the container's network namespace path`);
    if (netns !== undefined && !isNetnsPath(netns)) throw invalidEnv(`CNI_NETNS ${JSON.stringify(netns)} is refused: ${NETNS_PATH_RULE}`);
  }
  return {
    command,
    containerId,
    ifName,
    args: parseCniArgs(env.CNI_ARGS ?? ""),
    path: (env.CNI_PATH ?? "").split(":").filter((p) => p !== ""),
    ...(netns === undefined ? {} : { netns }),
  };
}

/** Parses CNI_ARGS ("K=V;K=V"); a pair without "=" is invalid environment (error 4). */
export function parseCniArgs(text: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of text.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw invalidEnv(`CNI_ARGS entry ${JSON.stringify(pair)} is not KEY=VALUE; CNI_ARGS is "K=V;K=V"`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}
