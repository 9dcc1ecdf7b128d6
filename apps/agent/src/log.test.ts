import { describe, expect, it } from "vitest";
import { formatLogLine, resolveLogFormat } from "./log.ts";

describe("resolveLogFormat", () => {
  it.each<[string | undefined, string | undefined, boolean, string]>([
    [undefined, undefined, true, "text"],
    [undefined, undefined, false, "json"],
    [undefined, "", true, "text"],
    [undefined, "json", true, "json"],
    [undefined, "text", false, "text"],
    ["json", "text", true, "json"],
    ["text", "json", false, "text"],
  ])("flag %j, FLATNET_LOG_FORMAT %j, TTY %j -> %s", (flag, env, tty, expected) => {
    expect(resolveLogFormat(flag, env === undefined ? {} : { FLATNET_LOG_FORMAT: env }, tty)).toBe(expected);
  });

  it.each<[string | undefined, string | undefined, string]>([
    ["xml", undefined, '--log-format "xml" is not a log format; use json or text'],
    [undefined, "pretty", 'FLATNET_LOG_FORMAT "pretty" is not a log format; use json or text'],
  ])("refuses flag %j / env %j naming the source and the rule", (flag, env, message) => {
    expect(() => resolveLogFormat(flag, env === undefined ? {} : { FLATNET_LOG_FORMAT: env }, true)).toThrow(message);
  });
});

describe("formatLogLine", () => {
  const record = { level: "warn", time: "2026-12-06T01:02:03.456Z", pid: 42, node: "n1", msg: "underlay changed", after: { ips: ["10.0.0.2/24"] }, note: "two words" };

  it("one line: time, level, message, then the fields (strings bare unless they need quotes, objects as JSON)", () => {
    expect(formatLogLine(JSON.stringify(record), false)).toBe(
      '01:02:03.456 WARN  underlay changed node=n1 after={"ips":["10.0.0.2/24"]} note="two words"\n',
    );
  });

  it("colours the level and the keys only when asked", () => {
    expect(formatLogLine(JSON.stringify(record), true)).toBe(
      "\u001b[90m01:02:03.456\u001b[0m \u001b[33mWARN \u001b[0m underlay changed \u001b[90mnode=\u001b[0mn1 \u001b[90mafter=\u001b[0m{\"ips\":[\"10.0.0.2/24\"]} \u001b[90mnote=\u001b[0m\"two words\"\n",
    );
  });

  it("a line that is not JSON passes through", () => {
    expect(formatLogLine("not json", false)).toBe("not json\n");
  });
});
