import { coreError, err, type Result } from "../errors.ts";

/**
 * Applies journal events in order to a freshly created allocator (cluster or node IPAM); the first refused event
 * ends the replay with its error, its message prefixed with `prefix` when given.
 */
export function replayEvents<T extends { apply(event: E): Result<unknown> }, E>(created: Result<T>, events: Iterable<E>, prefix?: string): Result<T> {
  if (!created.success) return created;
  for (const event of events) {
    const applied = created.data.apply(event);
    if (applied.success) continue;
    const { code, message, details } = applied.error;
    return prefix === undefined ? applied : err(coreError(code, `${prefix}: ${message}`, details, applied.error));
  }
  return created;
}
