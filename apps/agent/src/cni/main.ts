import { readFileSync, writeSync } from "node:fs";
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
  let written = 0;
  const bytes = Buffer.from(response.stdout, "utf8");
  while (written < bytes.length) written += writeSync(1, bytes, written); // synchronous: nothing is lost at exit
  return response.exitCode;
}
