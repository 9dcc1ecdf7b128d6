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
