import { type Command, Option } from "commander";
import { stringify } from "yaml";

/** What a command prints on stdout: its own text, wider text, or one document (kubectl's `-o`). */
export type OutputFormat = "text" | "wide" | "json" | "yaml";

export interface OutputFlags {
  output?: OutputFormat;
  json?: boolean;
}

/** Adds `-o, --output <format>` with the formats a command has, and `--json` as the alias of `-o json` it always was. */
export function addOutputOption(command: Command, formats: readonly OutputFormat[] = ["text", "json", "yaml"]): Command {
  return command
    .addOption(new Option("-o, --output <format>", "output format").choices([...formats]).default("text"))
    .addOption(new Option("--json", "same as -o json").conflicts("output"));
}

/** The format asked for: `--json` wins over the default `-o text` (commander refuses both given together). */
export function outputFormat(flags: OutputFlags): OutputFormat {
  return flags.json === true ? "json" : (flags.output ?? "text");
}

/** A document as JSON (2-space, trailing newline) or YAML. */
export function renderDocument(value: unknown, format: "json" | "yaml"): string {
  return format === "json" ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { lineWidth: 0 });
}
