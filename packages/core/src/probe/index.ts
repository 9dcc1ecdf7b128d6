/** Probe protocol types, plans, verdicts, diagnosis and report rendering (pure). */
export * from "./types.ts";
export * from "./schema.ts";
