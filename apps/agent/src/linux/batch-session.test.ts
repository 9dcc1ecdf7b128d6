import { describe, expect, it } from "vitest";
import { BatchSession, changesLinks } from "./batch-session.ts";
import { KernelCommandError } from "./exec.ts";

describe("changesLinks", () => {
  it.each([
    [["link add flatnet.1 type vxlan id 1"], true],
    [["route replace 10.0.0.0/24 dev eth0", "link del flatnet.1"], true],
    [["link delete fnv0"], true],
    [["link set dev flatnet.1 up"], false],
    [["neigh replace 10.0.0.1 lladdr 00:11:22:33:44:55 dev flatnet.1 nud permanent"], false],
    [["fdb add 00:11:22:33:44:55 dev flatnet.1 dst 172.16.0.1"], false],
    [["address add 10.0.0.1/32 dev link"], false],
    [[], false],
  ])("%j -> %s", (lines, expected) => {
    expect(changesLinks(lines)).toBe(expected);
  });
});

describe("BatchSession input", () => {
  it.each(["", "../etc", "a b", "-n"])("refuses the namespace name %j before starting anything", (netns) => {
    expect(() => new BatchSession("ip", netns)).toThrow(KernelCommandError);
  });

  it.each([
    ["route add 10.0.0.0/24 dev eth0\nlink del eth0", /must not contain a line break/],
    ["route add 10.0.0.0/24 dev eth0\r", /must not contain a line break/],
    ["route add 10.0.0.0/24 \\", /end in a backslash/],
  ])("refuses the line %j (it would shift the line count or join lines)", (line, message) => {
    const session = new BatchSession("ip", "fn-tb-never-created");
    expect(() => session.run(["link set dev lo up", line])).toThrow(message);
    expect(session.pid).toBeUndefined();
  });
});
