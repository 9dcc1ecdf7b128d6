import type { Command } from "commander";

export function registerPlanCommand(program: Command): void {
  program.command("plan").description("(not built yet)").action(() => {
    process.stderr.write("flatnet plan: not built yet\n");
    process.exitCode = 2;
  });
}
