/**
 * NDJSON probe event stream parsing: chunks in, validated ProbeEvents out. A bad line becomes an error naming
 * the line number and the rule, never an exception; a run that ends without `run-finished` is reported.
 */
import { type ProbeEvent, probeEventSchema } from "@flatnet/core";

export type LineOutcome = { ok: true; event: ProbeEvent } | { ok: false; line: number; message: string };

export function parseEventLine(text: string, line: number): LineOutcome | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return { ok: false, line, message: `probe output line ${line} is not JSON: ${JSON.stringify(trimmed.slice(0, 80))}` };
  }
  const parsed = probeEventSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, line, message: `probe output line ${line} is not a probe event: at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}` };
  }
  return { ok: true, event: parsed.data as ProbeEvent };
}

/** Splits a byte/text stream into lines across chunk boundaries. */
export class NdjsonSplitter {
  #buffer = "";
  #line = 0;
  constructor(private readonly onOutcome: (outcome: LineOutcome) => void) {}

  push(chunk: string): void {
    const lines = (this.#buffer + chunk).split("\n");
    this.#buffer = lines.pop()!;
    for (const text of lines) this.#emit(text);
  }

  end(): void {
    if (this.#buffer.trim() !== "") this.#emit(this.#buffer);
    this.#buffer = "";
  }

  #emit(text: string): void {
    this.#line++;
    const outcome = parseEventLine(text, this.#line);
    if (outcome) this.onOutcome(outcome);
  }
}
