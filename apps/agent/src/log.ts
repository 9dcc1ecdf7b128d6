import { pino, type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** JSON lines for collectors, or one readable line per record for a person at a terminal. */
export const LOG_FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The flag's format, else FLATNET_LOG_FORMAT, else text on a terminal and JSON otherwise (a file, a pipe, journald). */
export function resolveLogFormat(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, tty = process.stderr.isTTY === true): LogFormat {
  const chosen = flag ?? env.FLATNET_LOG_FORMAT;
  if (chosen === undefined || chosen === "") return tty ? "text" : "json";
  if (chosen === "json" || chosen === "text") return chosen;
  const from = flag === undefined ? "FLATNET_LOG_FORMAT" : "--log-format";
  throw Object.assign(new Error(`${from} "${chosen}" is not a log format; use json or text`), { code: "ERR_USAGE" });
}

/** Logs on stderr (stdout stays free for a command's own output), as JSON or as text lines. */
export function createLogger(options: { level?: LogLevel; base?: Record<string, unknown>; format?: LogFormat } = {}): Logger {
  const stderr = pino.destination({ fd: 2, sync: true });
  return pino(
    {
      level: options.level ?? "info",
      base: { pid: process.pid, ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.format === "text" ? { write: (line: string) => stderr.write(formatLogLine(line)) } : stderr,
  );
}

const LEVEL_COLOUR: Record<string, number> = { fatal: 35, error: 31, warn: 33, info: 32, debug: 36, trace: 90 };
// Fields every record has, or that the line's prefix already shows.
const PREFIX_FIELDS = new Set(["time", "level", "msg", "pid", "hostname"]);

/** One pino JSON record as `12:03:04.567 INFO  message key=value ...`; colour only when `colour` is set. */
export function formatLogLine(line: string, colour = process.stderr.isTTY === true && process.env.NO_COLOR === undefined): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const time = typeof record.time === "string" ? record.time.slice(11, 23) : "";
  const level = String(record.level ?? "").toUpperCase().padEnd(5);
  const paint = (code: number | undefined, text: string): string => (colour && code !== undefined ? `\u001b[${code}m${text}\u001b[0m` : text);
  const fields = Object.entries(record)
    .filter(([key]) => !PREFIX_FIELDS.has(key))
    .map(([key, value]) => `${paint(90, `${key}=`)}${typeof value === "string" && !/\s|"/.test(value) ? value : JSON.stringify(value)}`);
  return `${paint(90, time)} ${paint(LEVEL_COLOUR[String(record.level)], level)} ${String(record.msg ?? "")}${fields.length > 0 ? ` ${fields.join(" ")}` : ""}\n`;
}
