/** A lab failure a user can act on: `code` is stable (`ERR_LAB_*`), `message` names the value and the rule. */
export class LabError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LabError";
    this.code = code;
    if (options?.details !== undefined) this.details = options.details;
  }
}
