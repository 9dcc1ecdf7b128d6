/**
 * Error codes shared by every part of flatnet. Callers branch on the code, never on the message.
 * The union is open (`string & {}`) so other layers can add their own `ERR_*` codes.
 */
export type ErrorCode =
  | "ERR_INVALID_IP"
  | "ERR_INVALID_CIDR"
  | "ERR_HOST_BITS_SET"
  | "ERR_FAMILY_MISMATCH"
  | "ERR_OUT_OF_RANGE"
  | "ERR_TOO_LARGE"
  | "ERR_POOL_EXHAUSTED"
  | "ERR_OVERLAP"
  | "ERR_CONFLICT"
  | "ERR_NOT_FOUND"
  | "ERR_STALE_RELEASE"
  | "ERR_INVALID_CONFIG"
  | "ERR_INVALID_STATE"
  | "ERR_INVALID_PEER"
  | (string & {});

/** A plain-data error: what a `Result` carries and what crosses JSON boundaries. */
export interface CoreError {
  code: ErrorCode;
  message: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** The outcome of an operation that can fail in an expected way (structurally equal to zod's SafeParseResult). */
export type Result<T, E = CoreError> =
  | { success: true; data: T; error?: never }
  | { success: false; data?: never; error: E };

/**
 * The error `parseX` functions throw: an `Error` with a string `code` (and optional `details`).
 * @example
 */
export class FlatnetError extends Error implements CoreError {
  override readonly name = "FlatnetError";
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.details !== undefined) this.details = options.details;
  }

  /** Rebuilds a throwable error from a `CoreError` (e.g. the error of a failed `Result`). */
  static from(error: CoreError): FlatnetError {
    if (error instanceof FlatnetError) return error;
    return new FlatnetError(error.code, error.message, { cause: error.cause, details: error.details });
  }

  /** The plain `CoreError` form, safe to serialise. */
  toJSON(): CoreError {
    const json: CoreError = { code: this.code, message: this.message };
    if (this.details !== undefined) json.details = this.details;
    return json;
  }
}

/** Wraps a value as a successful `Result`. */
export function ok<T>(data: T): { success: true; data: T } {
  return { success: true, data };
}

/** Wraps an error as a failed `Result`. */
export function err<E = CoreError>(error: E): { success: false; error: E } {
  return { success: false, error };
}

/** Builds a `CoreError` (plain data, no stack) for a failed `Result`. */
export function coreError(code: ErrorCode, message: string, details?: Record<string, unknown>, cause?: unknown): CoreError {
  const error: CoreError = { code, message };
  if (details !== undefined) error.details = details;
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** True when `value` is an error-like object with a string `code` and `message` (works across duplicated bundles). */
export function isFlatnetError(value: unknown): value is FlatnetError {
  return (
    value instanceof Error &&
    typeof (value as { code?: unknown }).code === "string" &&
    (value as { name?: unknown }).name === "FlatnetError"
  );
}

/** Returns the data of a successful `Result`, or throws its error as a `FlatnetError`. */
export function unwrap<T>(result: Result<T>): T {
  if (result.success) return result.data;
  throw FlatnetError.from(result.error);
}

/** Runs `fn` and turns a thrown `FlatnetError` into a failed `Result`; any other throw (a bug) propagates. */
export function attempt<T>(fn: () => T): Result<T> {
  try {
    return ok(fn());
  } catch (error) {
    if (isFlatnetError(error)) return err(error.toJSON());
    throw error;
  }
}
