import { Command, CommanderError } from "commander";
import { registerAgentCommand } from "./agent.ts";
import { registerCheckCommand } from "./check.ts";
import { registerCompletionCommand } from "./completion.ts";
import { addExamples } from "./examples.ts";
import { registerLabCommand } from "./lab.ts";
import { registerPlanCommand } from "./plan.ts";
import { registerTraceCommand } from "./trace.ts";
import { registerVersionCommand } from "./version.ts";

/** Exit code of every usage error (unknown command or flag, missing argument, bad or conflicting value), as in kubectl. */
export const USAGE_EXIT = 2;

/** The whole `flatnet` command tree. */
export function createProgram(): Command {
  const program = new Command()
    .name("flatnet")
    .description("A flat pod network for Kubernetes: node agent, CNI plugin, lab and connectivity check")
    .showHelpAfterError("(add --help for usage and examples)")
    // Inherited by every subcommand registered below: commander throws instead of exiting, runCli maps the code.
    .exitOverride();
  registerVersionCommand(program);
  registerPlanCommand(program);
  registerAgentCommand(program);
  registerLabCommand(program);
  registerCheckCommand(program);
  registerTraceCommand(program);
  registerCompletionCommand(program);
  addExamples(
    program,
    "flatnet lab up && flatnet lab check     # a 3-node lab on this machine, every pod pair probed (root)",
    "flatnet check --context prod --deploy   # a cluster: deploy the probe responders, check, remove them",
    "flatnet version -o json",
    "source <(flatnet completion bash)",
  );
  return program;
}

/** Parses argv and runs the command; resolves with the process's exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : USAGE_EXIT;
    throw error;
  }
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}
