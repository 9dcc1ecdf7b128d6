import type { Command } from "commander";

export function registerAgentCommand(program: Command): void {
  program.command("agent").description("(not built yet)").action(() => {
    process.stderr.write("flatnet agent: not built yet\n");
    process.exitCode = 2;
  });
}
