import { describe, expect, it } from "vitest";
import { retryBusy } from "./sqlite.ts";

describe("retryBusy", () => {
  const failing = (errors: (Error | undefined)[]) => {
    let calls = 0;
    const fn = () => {
      const error = errors[calls++];
      if (error !== undefined) throw error;
      return calls;
    };
    return { fn, calls: () => calls };
  };
  const pauses: number[] = [];
  const pause = (ms: number) => void pauses.push(ms);

  it.each([
    ["succeeds at once", [], 1],
    ["retries 'database is locked' until it passes", [new Error("database is locked"), new Error("database is locked")], 3],
    ["retries SQLITE_BUSY by name", [new Error("SQLITE_BUSY: recovery")], 2],
  ])("%s", (_name, errors, calls) => {
    const run = failing(errors);
    expect(retryBusy(run.fn, 60_000, pause)).toBe(calls);
    expect(run.calls()).toBe(calls);
  });

  it("throws any other error at once", () => {
    const run = failing([new Error("no such table: snapshot"), undefined]);
    expect(() => retryBusy(run.fn, 60_000, pause)).toThrow("no such table: snapshot");
    expect(run.calls()).toBe(1);
  });

  it("gives up with the last busy error once the budget is spent", () => {
    const run = failing(Array.from({ length: 100 }, () => new Error("database is locked")));
    expect(() => retryBusy(run.fn, 0, pause)).toThrow("database is locked");
    expect(run.calls()).toBe(1);
  });

  it("pauses a little longer each time, at most ~55 ms", () => {
    pauses.length = 0;
    const run = failing(Array.from({ length: 9 }, () => new Error("database is locked")));
    retryBusy(run.fn, 60_000, pause);
    expect(pauses.length).toBe(9);
    expect(pauses[0]!).toBeLessThan(pauses[8]!);
    for (const ms of pauses) expect(ms).toBeLessThanOrEqual(55);
  });
});
