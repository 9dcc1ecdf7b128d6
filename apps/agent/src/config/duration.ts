const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const SCALE = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** The forms durationMs reads, for error messages. */
export const DURATION_FORMS = "a number with ms, s, m or h (e.g. 10s)";

/** "10s", "500ms", "1.5m", "2h", or bare seconds, in milliseconds; undefined when `text` is none of these. */
export function durationMs(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  return match === null ? undefined : Number(match[1]) * SCALE[(match[2] ?? "s") as keyof typeof SCALE];
}
