import { describe, expect, it } from "vitest";
import { assertNetnsName, classifyKernelMessage, failureCode, KernelCommandError, parseBatchFailures, parseJsonStream, plainKernelMessage } from "./exec.ts";
import { withPrefix } from "./read.ts";
import { renderMasqueradeRuleset } from "./masquerade.ts";
import { hostVethName, stableMac } from "./pod.ts";

describe("parseJsonStream", () => {
  it.each([
    ["", []],
    ["[]", [[]]],
    ['[{"a":1}]\n[]\n[{"b":"]["}]', [[{ a: 1 }], [], [{ b: "][" }]]],
    ['[{"s":"quote \\" ] inside"}][1]', [[{ s: 'quote " ] inside' }], [1]]],
    ['{"x":[1,2]}', [{ x: [1, 2] }]],
  ])("%j", (text, expected) => {
    expect(parseJsonStream(text)).toEqual(expected);
  });
});

describe("parseBatchFailures", () => {
  const lines = ["route replace a", "route replace b", "neigh del c"];
  it.each([
    ["", []],
    ["RTNETLINK answers: File exists\nCommand failed -:2\n", [{ line: 2, command: "route replace b", message: "RTNETLINK answers: File exists" }]],
    [
      "Error: Nexthop has invalid gateway.\nCommand failed -:1\nRTNETLINK answers: No such process\nCommand failed -:3\n",
      [
        { line: 1, command: "route replace a", message: "Error: Nexthop has invalid gateway." },
        { line: 3, command: "neigh del c", message: "RTNETLINK answers: No such process" },
      ],
    ],
    ["Command failed -:9\n", [{ line: 9, command: "", message: "refused" }]],
    // A batch that ended without "Command failed" (neigh exits the process) reports no line.
    ["RTNETLINK answers: No such file or directory\n", []],
  ])("%j", (stderr, expected) => {
    expect(parseBatchFailures(stderr, lines)).toEqual(expected);
  });
});

describe("assertNetnsName", () => {
  it.each(["fn-ta-n1", "node_1", "a.b"])("accepts %s", (name) => expect(() => assertNetnsName(name)).not.toThrow());
  it.each(["", "../x", "/run/netns/x", "-n", "a b"])("refuses %j, naming it", (name) => {
    expect(() => assertNetnsName(name)).toThrow(`network namespace name "${name}"`);
  });
});

describe("withPrefix", () => {
  it.each([
    ["10.0.0.5", "10.0.0.5/32"],
    ["10.0.0.0/24", "10.0.0.0/24"],
    ["fd00::5", "fd00::5/128"],
    ["::/0", "::/0"],
  ])("%s -> %s", (dst, expected) => expect(withPrefix(dst)).toBe(expected));
});

describe("hostVethName and stableMac", () => {
  it("is fnv + 8 hex, stable, and differs by ifName and container", () => {
    const a = hostVethName("abc", "eth0");
    expect(a).toMatch(/^fnv[0-9a-f]{8}$/);
    expect(hostVethName("abc", "eth0")).toBe(a);
    expect(new Set([a, hostVethName("abc", "eth1"), hostVethName("abce", "th0"), hostVethName("abd", "eth0")]).size).toBe(4);
  });
  it("makes locally administered unicast MACs", () => {
    for (const seed of ["a", "b", "fn-ta-n1/fn-br0"]) {
      const first = Number.parseInt(stableMac(seed).slice(0, 2), 16);
      expect(first & 0x02).toBe(0x02);
      expect(first & 0x01).toBe(0);
    }
  });
});

describe("renderMasqueradeRuleset", () => {
  it("masquerades only cluster -> outside, per family, replacing the table atomically", () => {
    expect(renderMasqueradeRuleset(["10.244.0.0/16"]).split("\n")).toEqual([
      "table inet flatnet {}",
      "delete table inet flatnet",
      "table inet flatnet {",
      "  chain postrouting {",
      "    type nat hook postrouting priority srcnat; policy accept;",
      "    meta mark & 0x00004000 == 0x00004000 return",
      "    ip saddr { 10.244.0.0/16 } ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade fully-random",
      "  }",
      "}",
      "",
    ]);
  });
  it("leaves pod -> node traffic alone: every node IP of the family joins the exclusion set", () => {
    const lines = renderMasqueradeRuleset(["10.244.0.0/16", "fd00:10:244::/56"], ["172.31.0.11", "fd00::11", "172.31.0.12", "172.31.0.11", "10.244.9.9"]).split("\n");
    expect(lines.filter((l) => l.includes("masquerade"))).toEqual([
      "    ip saddr { 10.244.0.0/16 } ip daddr != { 10.244.0.0/16, 172.31.0.11, 172.31.0.12, 224.0.0.0/4 } masquerade fully-random",
      "    ip6 saddr { fd00:10:244::/56 } ip6 daddr != { fd00:10:244::/56, fd00::11, ff00::/8 } masquerade fully-random",
    ]);
  });
});

describe("classifyKernelMessage", () => {
  it.each([
    ['Cannot open network namespace "fn-k1-gone": No such file or directory', "ENONS"],
    ["nsenter: cannot open /proc/4242/ns/net: No such file or directory", "ENONS"],
    ["nsenter: reassociate to namespace 'ns/net' failed: Invalid argument", "ENONS"],
    ['Cannot find device "fn-br0"', "ENODEV"],
    ['Device "eth9" does not exist.', "ENODEV"],
    ["RTNETLINK answers: No such device", "ENODEV"],
    ["Error: Device not found.", "ENODEV"],
    ["RTNETLINK answers: File exists", "EEXIST"],
    ["RTNETLINK answers: No such process", "ESRCH"],
    ["RTNETLINK answers: No such file or directory", "ENOENT"],
    ["RTNETLINK answers: Operation not permitted", "EPERM"],
    ["Error: Nexthop has invalid gateway.", "ERR_KERNEL_COMMAND"],
    ["cannot run ip: spawn ip ENOENT", "ERR_KERNEL_COMMAND"],
    ["", "ERR_KERNEL_COMMAND"],
  ])("%j is %s", (text, code) => expect(classifyKernelMessage(text)).toBe(code));

  it("strips iproute2's prefixes for people", () => {
    expect(["RTNETLINK answers: Network is unreachable", "Error: any valid prefix is expected.", "plain"].map(plainKernelMessage)).toEqual([
      "Network is unreachable",
      "any valid prefix is expected.",
      "plain",
    ]);
  });
});

describe("failureCode and KernelCommandError.code", () => {
  const lines = ["link add a type dummy", "link add b type dummy"];
  it.each([
    ["success", { exitCode: 0, stdout: "", stderr: "", failures: [] }, undefined],
    // The first refused line decides, not whichever message the stderr happens to hold first.
    ["first refused line", { exitCode: 1, stdout: "", stderr: "RTNETLINK answers: File exists\nCommand failed -:2\n", failures: parseBatchFailures("RTNETLINK answers: File exists\nCommand failed -:2\n", lines) }, "EEXIST"],
    ["stderr without batch lines", { exitCode: 1, stdout: "", stderr: 'Cannot open network namespace "x": No such file or directory\n' }, "ENONS"],
  ] as const)("%s", (_, result, code) => expect(failureCode(result)).toBe(code));

  it("an error classifies as the run did, and an explicit code wins", () => {
    expect(new KernelCommandError(["ip"], 1, "RTNETLINK answers: No such process\n").code).toBe("ESRCH");
    expect(new KernelCommandError(["ip"], 1, "x", [{ line: 1, command: "c", message: 'Cannot find device "d"' }]).code).toBe("ENODEV");
    expect(new KernelCommandError(["ip"], 2, '"File exists" is a bad name', [], "ERR_KERNEL_COMMAND").code).toBe("ERR_KERNEL_COMMAND");
    expect(() => assertNetnsName("File exists")).toThrow(expect.objectContaining({ code: "ERR_KERNEL_COMMAND" }));
  });
});
