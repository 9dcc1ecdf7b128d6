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

/** The lab lives in network namespaces: creating, entering or reading them takes root. Says so before anything fails. */
export function requireRoot(subject: string, command: string, alternative = "", uid: number | undefined = process.getuid?.()): void {
  if (uid === undefined || uid === 0) return;
  throw new LabError("ERR_LAB_NEEDS_ROOT", `${subject} needs root (running as uid ${uid}): the lab's network namespaces are root's; run "sudo ${command} ..." or as root${alternative}`);
}
