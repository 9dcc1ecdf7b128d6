/** Probe protocol types, plans, verdicts, diagnosis and report rendering (pure). */
export * from "./types.ts";
export * from "./schema.ts";
export * from "./address.ts";
export * from "./plan.ts";
export * from "./verdict.ts";
export * from "./firewall.ts";
export * from "./diagnose.ts";
export * from "./ledger.ts";
export * from "./report.ts";
export * from "./junit.ts";
export * from "./matrix.ts";
