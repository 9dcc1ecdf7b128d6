import { IpamDamagedError } from "../ipam-store/store.ts";
import { cmdAdd } from "./add.ts";
import type { DelegatedResponse } from "./delegate.ts";
import { cmdCheck } from "./check.ts";
import { cmdDel } from "./del.ts";
import { cmdGc, cmdStatus } from "./gc-status.ts";
import { parseCniCommand, parseCniEnv } from "./env.ts";
import { CniCode, CniError, toCniErrorJson } from "./errors.ts";
import type { Invocation, PluginDeps } from "./invocation.ts";
import { parseNetconf } from "./netconf.ts";
import { isSupportedVersion, LATEST_CNI_VERSION, SUPPORTED_CNI_VERSIONS } from "./version.ts";

/**
 * Runs one CNI invocation: validates env and stdin, dispatches the command, and turns every failure into CNI error
 * JSON on stdout with a non-zero exit (never a stack trace).
 */
export async function handleCni(env: Record<string, string | undefined>, stdin: string, deps: PluginDeps): Promise<DelegatedResponse> {
  let cniVersion: string = LATEST_CNI_VERSION;
  try {
    const command = parseCniCommand(env);
    if (command === "VERSION") return { exitCode: 0, stdout: versionInfo(stdin) };
    deps.trace("start");
    const netconf = parseNetconf(stdin);
    cniVersion = netconf.cniVersion;
    const invocation: Invocation = { env: parseCniEnv(env), netconf, deps };
    let output: unknown;
    switch (command) {
      case "ADD": output = await cmdAdd(invocation); break;
      case "DEL": await cmdDel(invocation); break;
      case "CHECK": await cmdCheck(invocation); break;
      case "GC": await cmdGc(invocation); break;
      case "STATUS": await cmdStatus(invocation); break;
    }
    deps.trace("done");
    return { exitCode: 0, stdout: output === undefined ? "" : JSON.stringify(output) + "\n" };
  } catch (error) {
    // A damaged IPAM database (found at any read, not only at open) is an I/O failure naming the file, not a bug.
    const reported = error instanceof IpamDamagedError ? new CniError(CniCode.IoFailure, error.message) : error;
    return { exitCode: 1, stdout: JSON.stringify(toCniErrorJson(reported, cniVersion)) + "\n" };
  }
}

function versionInfo(stdin: string): string {
  let requested: unknown;
  try {
    requested = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
  } catch {
    requested = undefined;
  }
  const cniVersion = typeof requested === "string" && isSupportedVersion(requested) ? requested : LATEST_CNI_VERSION;
  return JSON.stringify({ cniVersion, supportedVersions: [...SUPPORTED_CNI_VERSIONS] }) + "\n";
}
