import type { Command } from "commander";

/** Appends an "Examples:" block to a command's --help (kubectl's layout: one invocation a line, a comment after #). */
export function addExamples(command: Command, ...examples: string[]): Command {
  return command.addHelpText("after", `\nExamples:\n${examples.map((line) => `  ${line}`).join("\n")}`);
}
