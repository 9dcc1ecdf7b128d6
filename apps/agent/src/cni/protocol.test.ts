import { describe, expect, it } from "vitest";
import { parseCniArgs, parseCniEnv } from "./env.ts";
import { CniError } from "./errors.ts";
import { parseNetconf, parseSubnetFile } from "./netconf.ts";
import { formatResult, parsePrevResult } from "./result.ts";
import { compareVersions } from "./version.ts";

const base = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "abc", CNI_NETNS: "/run/netns/x", CNI_IFNAME: "eth0" };
const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.1.0", name: "net", type: "flatnet", podCidrs: ["10.244.1.0/24"], nodeNetns: "node", ...extra });

function codeOf(fn: () => unknown): { code: number; msg: string } | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof CniError) return { code: error.code, msg: error.message };
    throw error;
  }
}

describe("parseCniEnv", () => {
  it.each([
    ["ADD with everything", base, undefined],
    ["DEL without CNI_NETNS", { ...base, CNI_COMMAND: "DEL", CNI_NETNS: undefined }, undefined],
    ["GC without attachment variables", { CNI_COMMAND: "GC" }, undefined],
    ["STATUS without attachment variables", { CNI_COMMAND: "STATUS" }, undefined],
    ["no command", { ...base, CNI_COMMAND: undefined }, "CNI_COMMAND is not set"],
    ["lower-case command", { ...base, CNI_COMMAND: "add" }, '"add"'],
    ["CHECK without CNI_NETNS", { ...base, CNI_COMMAND: "CHECK", CNI_NETNS: undefined }, "CNI_NETNS is not set"],
    ["relative CNI_NETNS", { ...base, CNI_NETNS: "netns/x" }, '"netns/x"'],
    ["container ID starting with a dot", { ...base, CNI_CONTAINERID: ".abc" }, '".abc"'],
    ["interface name of 16 characters", { ...base, CNI_IFNAME: "a234567890123456" }, '"a234567890123456"'],
    ["interface name with a slash", { ...base, CNI_IFNAME: "eth/0" }, '"eth/0"'],
    ["interface name ..", { ...base, CNI_IFNAME: ".." }, '".."'],
    ["interface name with iproute2's comment sign", { ...base, CNI_IFNAME: "eth0#" }, 'CNI_IFNAME "eth0#" is refused'],
    ["interface name with a quote", { ...base, CNI_IFNAME: 'eth"0' }, 'CNI_IFNAME "eth\\"0" is refused'],
    ["interface name with a backslash", { ...base, CNI_IFNAME: "eth0\\" }, 'CNI_IFNAME "eth0\\\\" is refused'],
    ["CNI_NETNS with a space", { ...base, CNI_NETNS: "/run/netns/x mtu 1" }, "without whitespace or control characters"],
    ["CNI_NETNS with a control character", { ...base, CNI_NETNS: "/run/netns/x\u0001" }, "without whitespace or control characters"],
    ["CNI_ARGS without =", { ...base, CNI_ARGS: "K8S_POD_NAME" }, '"K8S_POD_NAME"'],
  ])("%s", (_name, env, error) => {
    const outcome = codeOf(() => parseCniEnv(env));
    if (error === undefined) expect(outcome).toBeUndefined();
    else {
      expect(outcome?.code).toBe(4);
      expect(outcome?.msg).toContain(error);
    }
  });

  it("parses CNI_ARGS into pairs, keeping '=' inside values", () => {
    expect(parseCniArgs("IgnoreUnknown=1;K8S_POD_NAME=web;X=a=b;")).toEqual({ IgnoreUnknown: "1", K8S_POD_NAME: "web", X: "a=b" });
  });
});

describe("parseNetconf", () => {
  it("fills defaults", () => {
    expect(parseNetconf(conf())).toEqual({
      cniVersion: "1.1.0", name: "net", bridge: "fn-br0", dataDir: "/run/flatnet/ipam", nodeNetns: "node", podCidrs: ["10.244.1.0/24"],
    });
  });

  it.each([
    ["not JSON", "{", 6, "not JSON"],
    ["a JSON array", "[]", 6, "JSON object"],
    ["no cniVersion", JSON.stringify({ name: "n", type: "flatnet" }), 7, "cniVersion"],
    ["cniVersion 0.3.1", conf({ cniVersion: "0.3.1" }), 1, '"0.3.1"'],
    ["cniVersion 2.0.0", conf({ cniVersion: "2.0.0" }), 1, '"2.0.0"'],
    ["a name with a space", conf({ name: "my net" }), 7, "name"],
    ["type bridge", conf({ type: "bridge" }), 7, '"bridge"'],
    ["podCidrs and subnetFile", conf({ subnetFile: "/run/flatnet/subnet.json" }), 7, "both"],
    ["a relative subnetFile", conf({ podCidrs: undefined, subnetFile: "subnet.json" }), 7, "absolute"],
    ["host bits set", conf({ podCidrs: ["10.244.1.1/24"] }), 7, '"10.244.1.1/24"'],
    ["a /31 pool", conf({ podCidrs: ["10.244.1.0/31"] }), 7, "too small"],
    ["a /127 pool", conf({ podCidrs: ["fd00::/127"] }), 7, "too small"],
    ["two IPv6 pools", conf({ podCidrs: ["fd00:1::/64", "fd00:2::/64"] }), 7, "at most one per family"],
    ["three pools", conf({ podCidrs: ["10.0.0.0/24", "fd00::/64", "10.1.0.0/24"] }), 7, "podCidrs"],
    ["MTU 575", conf({ mtu: 575 }), 7, "mtu"],
    ["MTU 1500.5", conf({ mtu: 1500.5 }), 7, "mtu"],
    ["a nodeNetns path", conf({ nodeNetns: "/run/netns/node" }), 7, "nodeNetns"],
  ])("refuses %s with code %i naming it", (_name, stdin, code, text) => {
    const outcome = codeOf(() => parseNetconf(stdin));
    expect(outcome?.code).toBe(code);
    expect(outcome?.msg).toContain(text);
  });

  it("reads the valid attachments of a GC", () => {
    const parsed = parseNetconf(conf({ "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth0" }] }));
    expect(parsed.validAttachments).toEqual([{ containerId: "a", ifName: "eth0" }]);
  });

  it.each([
    [undefined, 11, "does not exist yet"],
    ["{", 7, "not JSON"],
    [JSON.stringify({ podCidrs: [], mtu: 1450 }), 7, "podCidrs"],
    [JSON.stringify({ podCidrs: ["10.0.0.0/24"] }), 7, "mtu"],
  ])("subnet file %s: code %i", (text, code, message) => {
    const outcome = codeOf(() => parseSubnetFile("/run/flatnet/subnet.json", text));
    expect(outcome).toMatchObject({ code });
    expect(outcome?.msg).toContain(message);
  });
});

describe("results across versions", () => {
  const result = {
    cniVersion: "1.1.0",
    interfaces: [{ name: "fnv1", mac: "aa:bb:cc:dd:ee:ff", mtu: 1450 }, { name: "eth0", mac: "11:22:33:44:55:66", mtu: 1450, sandbox: "/run/netns/p" }],
    ips: [{ address: "10.244.1.2/24", gateway: "10.244.1.1", interface: 1 }, { address: "fd00::2/64", gateway: "fd00::1", interface: 1 }],
    routes: [{ dst: "0.0.0.0/0", gw: "10.244.1.1", mtu: 1400 }],
  };

  it("writes 1.1.0 with every field", () => {
    expect(formatResult(result, "1.1.0")).toEqual({ ...result, dns: {} });
  });

  it("writes 1.0.0 without the fields 1.1.0 added (interfaces[].mtu, routes[].mtu)", () => {
    expect(formatResult(result, "1.0.0")).toEqual({
      cniVersion: "1.0.0",
      interfaces: [{ name: "fnv1", mac: "aa:bb:cc:dd:ee:ff" }, { name: "eth0", mac: "11:22:33:44:55:66", sandbox: "/run/netns/p" }],
      ips: result.ips,
      routes: [{ dst: "0.0.0.0/0", gw: "10.244.1.1" }],
      dns: {},
    });
  });

  it("writes 0.4.0 with ips[].version", () => {
    expect((formatResult(result, "0.4.0").ips as unknown[])).toEqual([
      { version: "4", address: "10.244.1.2/24", gateway: "10.244.1.1", interface: 1 },
      { version: "6", address: "fd00::2/64", gateway: "fd00::1", interface: 1 },
    ]);
  });

  it("reads a 0.4.0 prevResult back into the 1.1 shape", () => {
    const old = formatResult(result, "0.4.0");
    expect(parsePrevResult(old, "0.4.0").ips).toEqual(result.ips);
  });

  it("refuses a prevResult that is not a result (code 7)", () => {
    expect(codeOf(() => parsePrevResult({ ips: [{ gateway: "10.0.0.1" }] }, "1.0.0"))?.code).toBe(7);
  });

  it.each([
    ["0.4.0", "1.0.0", -1],
    ["1.1.0", "1.0.0", 1],
    ["1.1.0", "1.1.0", 0],
    ["1.10.0", "1.9.0", 1],
  ])("compareVersions(%s, %s) = %i", (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
  });
});
