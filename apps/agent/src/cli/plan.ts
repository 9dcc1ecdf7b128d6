import { readFile } from "node:fs/promises";
import { buffer } from "node:stream/consumers";
import { type Command, CommanderError } from "commander";
import { parseDocument } from "yaml";
import { clusterDescriptionSchema, safeParseSchema } from "@flatnet/core";
import { formatPlanText, planCluster, planDocument } from "../plan/cluster-plan.ts";
import { addExamples } from "./examples.ts";
import { addOutputOption, type OutputFormat, outputFormat, renderDocument } from "./output.ts";

/** Exit codes of `flatnet plan`: 2 for bad input (the message names the field), 66 (EX_NOINPUT) for an unreadable file. */
export const PLAN_EXIT = { ok: 0, badInput: 2, noInput: 66 } as const;

export interface PlanArguments {
  file: string;
  node?: string;
  json?: boolean;
  output?: OutputFormat;
}

export interface PlanIo {
  readText(file: string): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

const defaultIo: PlanIo = {
  readText: async (file) => (file === "-" ? (await buffer(process.stdin)).toString("utf8") : readFile(file, "utf8")),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export function registerPlanCommand(program: Command): void {
  const command = program
    .command("plan")
    .description("Allocate pod CIDRs for a cluster description (YAML or JSON) and print each node's iproute2 commands")
    .argument("<file>", 'cluster description (YAML or JSON; "-" reads stdin), e.g. examples/cluster.yaml')
    .option("--node <name>", "only this node");
  addExamples(
    addOutputOption(command),
    "flatnet plan examples/cluster.yaml --node node-3",
    "flatnet plan examples/cluster.yaml -o yaml",
    "cat cluster.json | flatnet plan - --json",
  )
    .addHelpText("after", "\nExit codes: 0 ok, 2 invalid description or usage (the message names the key and value), 66 file missing or unreadable.")
    // A usage error (missing file argument, unknown option) is bad input too: exit 2, not commander's 1.
    .exitOverride((error) => {
      throw error.exitCode === 0 ? error : new CommanderError(PLAN_EXIT.badInput, error.code, error.message);
    })
    .action(async (file: string, options: { node?: string; json?: boolean; output?: OutputFormat }) => {
      process.exitCode = await runPlan({ file, ...options });
    });
}

/** Runs `flatnet plan` and returns its exit code; every failure is one message on stderr, never a stack trace. */
export async function runPlan(args: PlanArguments, io: PlanIo = defaultIo): Promise<number> {
  const source = args.file === "-" ? "<stdin>" : args.file;
  let text: string;
  try {
    text = await io.readText(args.file);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (error as Error).message;
    io.stderr(`flatnet plan: cannot read ${source}: ${reason}\n`);
    return PLAN_EXIT.noInput;
  }

  // YAML 1.2 is a superset of JSON, so one parser reads both.
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const lines = document.errors.map((error) => {
      const position = error.linePos?.[0];
      return `${source}${position ? `:${position.line}:${position.col}` : ""}: ${error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`;
    });
    io.stderr(`flatnet plan: ${source} is not valid YAML or JSON:\n${lines.join("\n")}\n`);
    return PLAN_EXIT.badInput;
  }
  const described = safeParseSchema(clusterDescriptionSchema, document.toJS(), source);
  if (!described.success) {
    io.stderr(`flatnet plan: invalid cluster description:\n${described.error.message}\n`);
    return PLAN_EXIT.badInput;
  }
  const plans = planCluster(described.data, args.node);
  if (!plans.success) {
    io.stderr(`flatnet plan: ${source}: ${plans.error.message}\n`);
    return PLAN_EXIT.badInput;
  }
  const format = outputFormat(args);
  io.stdout(format === "json" || format === "yaml" ? renderDocument(planDocument(described.data, plans.data), format) : formatPlanText(described.data, plans.data));
  return PLAN_EXIT.ok;
}
