import { setTimeout as delay } from "node:timers/promises";

export interface WaitOptions {
  timeoutMs: number;
  /** First poll interval; it doubles up to maxIntervalMs. */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Cuts the current pause short; the condition is asked once more (it may throw to end the wait). */
  signal?: AbortSignal;
}

/** Polls a condition on the real state until it holds or the timeout passes; returns whether it held. */
export async function waitFor(condition: () => Promise<boolean> | boolean, options: WaitOptions): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  let interval = options.intervalMs ?? 10;
  const maxInterval = options.maxIntervalMs ?? 200;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await delay(Math.min(interval, Math.max(1, deadline - Date.now())), undefined, { signal: options.signal }).catch(() => {});
    interval = Math.min(interval * 2, maxInterval);
  }
}

/**
 * Polls `condition` (as waitFor) until it returns a truthy value and returns that value; a throw counts as not yet.
 * On timeout (default 15 s) throws naming `what`, with the condition's last error as the cause.
 */
export async function waitUntil<T>(what: string, condition: () => T | Promise<T>, options: Partial<WaitOptions> = {}): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  let value: T | undefined;
  let lastError: unknown;
  const held = await waitFor(async () => {
    try {
      value = await condition();
      return Boolean(value);
    } catch (error) {
      lastError = error;
      return false;
    }
  }, { ...options, timeoutMs });
  if (!held) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
  return value as NonNullable<T>;
}
