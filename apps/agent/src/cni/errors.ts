/** CNI 1.1 well-known error codes (SPEC.md "Error codes") and flatnet's own codes (100+). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  /** flatnet: no free address left in a pod CIDR of this node. */
  PoolExhausted: 100,
  /** flatnet: a kernel operation (veth, address, route) failed. */
  KernelFailure: 101,
  /** flatnet: CHECK found the attachment different from its ADD result. */
  CheckFailed: 102,
} as const;

/** An error the plugin reports as CNI error JSON on stdout (`{cniVersion, code, msg, details}`) with a non-zero exit. */
export class CniError extends Error {
  override readonly name = "CniError";
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
  ) {
    super(message);
  }
}

/** The CNI error JSON for `error`; anything that is not a CniError is a bug and becomes a plugin failure without a stack. */
export function toCniErrorJson(error: unknown, cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
  if (error instanceof CniError) return { cniVersion, code: error.code, msg: error.message, ...(error.details === undefined ? {} : { details: error.details }) };
  const message = error instanceof Error ? error.message : String(error);
  return { cniVersion, code: CniCode.IoFailure, msg: `flatnet internal error: ${message}` };
}
