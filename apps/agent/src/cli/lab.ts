import type { Command } from "commander";

export function registerLabCommand(program: Command): void {
  program.command("lab").description("(not built yet)").action(() => {
    process.stderr.write("flatnet lab: not built yet\n");
    process.exitCode = 2;
  });
}
