import { runCniProcess } from "./cni/main.ts";
import { runCli } from "./cli/program.ts";

// A container runtime execs the binary with CNI_COMMAND set: answer as a CNI plugin, not as the CLI.
if (process.env.CNI_COMMAND !== undefined) process.exitCode = await runCniProcess();
else {
  try {
    process.exitCode = await runCli(process.argv);
  } catch (error) {
    // A bug, not a usage or runtime error a command reports itself: one line, the stack only when asked for.
    process.stderr.write(`flatnet: ${(error as Error).message ?? String(error)}\n`);
    if (process.env.FLATNET_DEBUG === "1") process.stderr.write(`${(error as Error).stack}\n`);
    process.exitCode = 1;
  }
}
