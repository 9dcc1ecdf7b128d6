import { describe, expect, it } from "vitest";
import { LabError } from "./errors.ts";
import { isLabNamespace, podNs, validatePrefix } from "./names.ts";

describe("validatePrefix", () => {
  it.each(["fn-", "fn-e1-", "a-", "lab2-", "abcdefghijkl-"])("accepts %s", (prefix) => {
    expect(validatePrefix(prefix)).toBe(prefix);
  });

  it.each([
    ["", "empty"],
    ["fn", "no trailing dash"],
    ["Fn-", "upper case"],
    ["1fn-", "starts with a digit"],
    ["-", "only a dash"],
    ["fn_x-", "underscore"],
    ["fn x-", "space"],
    ["fn/-", "slash"],
    ["abcdefghijklm-", "14 characters"],
  ])("rejects %j (%s) naming the value and the rule", (prefix) => {
    expect(() => validatePrefix(prefix)).toThrow(LabError);
    expect(() => validatePrefix(prefix)).toThrow(`prefix "${prefix}" is invalid; it must start with a lower-case letter`);
  });
});

describe("isLabNamespace", () => {
  it.each([
    ["fn-", "fn-node1", true],
    ["fn-", "fn-node12", true],
    ["fn-", "fn-node200", true],
    ["fn-", "fn-underlay", true],
    ["fn-", "fn-router", true],
    ["fn-", "fn-pod-node3-2", true],
    ["fn-", "fn-e1-node1", false],
    ["fn-", "fn-ta-x1", false],
    ["fn-", "fn-node0", false],
    ["fn-", "fn-node1000", false],
    ["fn-", "fn-nodeX", false],
    ["fn-", "fn-pod-node1-0", false],
    ["fn-", "fn-underlay2", false],
    ["fn-", "xfn-node1", false],
    ["fn-e1-", "fn-e1-node1", true],
    ["fn-e1-", "fn-node1", false],
  ])("prefix %s: %s -> %s", (prefix, name, expected) => {
    expect(isLabNamespace(prefix, name)).toBe(expected);
  });

  it("recognises every pod namespace name it builds", () => {
    expect(isLabNamespace("fn-", podNs("fn-", "node7", 12))).toBe(true);
  });
});
