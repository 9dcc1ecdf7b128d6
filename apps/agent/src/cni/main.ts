import { readFileSync } from "node:fs";
import { realDeps } from "./deps.ts";
import { handleCni } from "./plugin.ts";

/** Runs one CNI invocation from this process's env and stdin; writes the result or the CNI error JSON to stdout. */
export async function runCniProcess(): Promise<number> {
  let stdin = "";
  if (process.env.CNI_COMMAND !== "VERSION" || !process.stdin.isTTY) {
    try {
      stdin = readFileSync(0, "utf8");
    } catch {
      stdin = "";
    }
  }
  const response = await handleCni(process.env, stdin, realDeps(process.env));
  process.stdout.write(response.stdout);
  return response.exitCode;
}
