import type { Command } from "commander";

export function registerCheckCommand(program: Command): void {
  program.command("check").description("(not built yet)").action(() => {
    process.stderr.write("flatnet check: not built yet\n");
    process.exitCode = 2;
  });
}
