import { waitFor, type WaitOptions } from "../src/wait.ts";

// Test-only: product code waits with waitFor; tests also want the value the condition found.

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
