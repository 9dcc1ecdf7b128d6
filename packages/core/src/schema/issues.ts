import type { z } from "zod";
import { coreError, err, ok, type Result } from "../errors.ts";

/** One schema problem: where (dotted key path), the value found there, and the rule it broke. */
export interface SchemaIssue {
  path: string;
  value: unknown;
  message: string;
}

/**
 * Validates boundary data with a zod schema; a failure is `ERR_INVALID_CONFIG` whose message has one line per issue,
 * `key "nodes.1.underlayIps.0" = "172.31.0.300": <rule>`, and whose `details.issues` lists them.
 * @example
 * const config = safeParseSchema(networkConfigSchema, JSON.parse(text), "network config");
 * if (!config.success) console.error(config.error.message);
 */
export function safeParseSchema<S extends z.ZodType>(schema: S, data: unknown, source: string): Result<z.output<S>> {
  const parsed = schema.safeParse(data);
  if (parsed.success) return ok(parsed.data);
  const issues = schemaIssues(parsed.error, data);
  const lines = issues.map((issue) => `${source}: key "${issue.path}" = ${showValue(issue.value)}: ${issue.message}`);
  return err(coreError("ERR_INVALID_CONFIG", lines.join("\n"), { issues }));
}

/** The issues of a zod error with their key paths and the offending values looked up in `data`. */
export function schemaIssues(error: z.ZodError, data: unknown): SchemaIssue[] {
  return error.issues.flatMap((issue) => {
    // An unknown key (often a typo such as podCIDRs) is reported at the key itself, not at its object.
    const paths = issue.code === "unrecognized_keys" ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
    const message = issue.code === "unrecognized_keys" ? "unknown key (check its spelling)" : issue.message;
    return paths.map((path) => ({ path: formatPath(path), value: valueAt(data, path), message }));
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "(root)" : path.map(String).join(".");
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current = data;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function showValue(value: unknown): string {
  if (value === undefined) return "(missing)";
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
