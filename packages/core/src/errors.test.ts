import { describe, expect, it } from "vitest";
import { attempt, coreError, err, FlatnetError, isFlatnetError, ok, unwrap } from "./errors.ts";

describe("errors and results", () => {
  it("ok / err build the two Result shapes", () => {
    expect(ok(1)).toEqual({ success: true, data: 1 });
    expect(err(coreError("ERR_NOT_FOUND", "gone"))).toEqual({ success: false, error: { code: "ERR_NOT_FOUND", message: "gone" } });
  });

  it("FlatnetError carries code, details and cause, and serialises without the stack", () => {
    const cause = new Error("inner");
    const error = new FlatnetError("ERR_OVERLAP", "overlaps", { cause, details: { a: 1 } });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("FlatnetError");
    expect(error.cause).toBe(cause);
    expect(JSON.parse(JSON.stringify(error))).toEqual({ code: "ERR_OVERLAP", message: "overlaps", details: { a: 1 } });
  });

  it.each([
    [new FlatnetError("ERR_X", "x"), true],
    [Object.assign(new Error("y"), { code: "ENOENT" }), false],
    [{ name: "FlatnetError", code: "ERR_X", message: "x" }, false],
    ["ERR_X", false],
    [undefined, false],
  ])("isFlatnetError(%s) = %s", (value, expected) => {
    expect(isFlatnetError(value)).toBe(expected);
  });

  it("unwrap returns data or throws the error with its code", () => {
    expect(unwrap(ok("x"))).toBe("x");
    expect(() => unwrap(err(coreError("ERR_POOL_EXHAUSTED", "full")))).toThrow(expect.objectContaining({ code: "ERR_POOL_EXHAUSTED" }));
  });

  it("attempt turns FlatnetErrors into Results and lets bugs propagate", () => {
    expect(attempt(() => 2)).toEqual({ success: true, data: 2 });
    expect(attempt(() => {
      throw new FlatnetError("ERR_INVALID_IP", "bad");
    })).toEqual({ success: false, error: { code: "ERR_INVALID_IP", message: "bad" } });
    expect(() => attempt(() => {
      throw new TypeError("bug");
    })).toThrow("bug");
  });
});
