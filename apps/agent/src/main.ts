import { Command } from "commander";
import { registerAgentCommand } from "./cli/agent.ts";
import { registerCheckCommand } from "./cli/check.ts";
import { registerLabCommand } from "./cli/lab.ts";
import { registerPlanCommand } from "./cli/plan.ts";
import { registerTraceCommand } from "./cli/trace.ts";
import { runCniIfInvoked } from "./cli/cni.ts";

// A container runtime execs the binary with CNI_COMMAND set: answer as a CNI plugin, not as the CLI.
if (!(await runCniIfInvoked())) {
  const program = new Command()
    .name("flatnet")
    .description("A flat pod network for Kubernetes: node agent, CNI plugin, lab and connectivity check")
    .showHelpAfterError()
    .exitOverride();
  registerPlanCommand(program);
  registerAgentCommand(program);
  registerLabCommand(program);
  registerCheckCommand(program);
  registerTraceCommand(program);
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    process.exitCode = typeof code === "number" ? code : 1;
  }
}
