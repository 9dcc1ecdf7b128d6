import { readFileSync, writeSync } from "node:fs";
import { config as zodConfig } from "zod/mini";
import { realDeps } from "./deps.ts";
import { handleCni } from "./plugin.ts";

/** Runs one CNI invocation from this process's env and stdin (read here unless the caller read it); writes the result or the CNI error JSON to stdout. */
export async function runCniProcess(input?: string): Promise<number> {
  // One parse per process: zod's compiled (new Function) fast path costs more to build than it saves.
  zodConfig({ jitless: true });
  // Read stdin for every command, VERSION included, as skel does (and without touching process.stdin: it costs ms).
  let stdin = input ?? "";
  if (input === undefined) {
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
