import { describe, expect, it } from "vitest";
import { parseDuration, parseProbePort } from "./agent.ts";

describe("parseDuration", () => {
  it.each([
    ["10s", 10_000], ["500ms", 500], ["1.5m", 90_000], ["2h", 7_200_000], ["3", 3_000], [" 250ms ", 250],
  ])("%j -> %i ms", (text, ms) => expect(parseDuration(text, "--resync-interval")).toBe(ms));
  it.each(["", "10q", "-1s", "0s", "s", "1e3s"])("refuses %j, naming the flag and the rule", (text) => {
    expect(() => parseDuration(text, "--resync-interval")).toThrow(/--resync-interval ".*" (is not a duration|must be longer than zero)/);
  });
});

describe("parseProbePort", () => {
  it.each([["7471", 7471], ["0", 0], ["65535", 65535], [" 80 ", 80]])("%j -> %i", (text, port) => expect(parseProbePort(text)).toBe(port));
  it.each(["", "-1", "65536", "7471.5", "abc", "1e3"])("refuses %j, naming the flag and the rule", (text) => {
    expect(() => parseProbePort(text)).toThrow(/--probe-port ".*" must be an integer from 0 \(off\) to 65535/);
  });
});
