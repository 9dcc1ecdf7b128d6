export interface BackoffOptions {
  /** First retry delay. Default 200 ms. */
  initialMs?: number;
  /** Cap. Default 30 s. */
  maxMs?: number;
  /** Spread each delay by up to +-this fraction so agents failing together do not retry together. Default 0.2. */
  jitter?: number;
  random?: () => number;
}

/** Exponential backoff: the delay before retry number `failures` (1 = first retry), capped and jittered. */
export function backoffDelay(failures: number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? 200;
  const max = options.maxMs ?? 30_000;
  const jitter = options.jitter ?? 0.2;
  const random = options.random ?? Math.random;
  const base = Math.min(max, initial * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}
