// Issue 14: fast-check over the CNI edge (stdin and CNI_* env). Whatever comes in: handleCni settles, answers either a
// result or CNI error JSON with a spec (or flatnet 100+) code and a message, never a stack; and only names under the
// one interface-name rule and valid namespace paths ever reach the (fake, recording) kernel.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { INTERFACE_NAME_PATTERN } from "@flatnet/core";
import { IpamStore } from "../ipam-store/store.ts";
import { isNetnsPath, NETNS_NAME, type NetnsTarget } from "../linux/exec.ts";
import type { PluginDeps } from "./invocation.ts";
import { handleCni } from "./plugin.ts";

const dir = mkdtempSync(join(tmpdir(), "fn-hc-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CODES = new Set([1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102]);

/** Fake kernel that records every name and namespace handed to it. */
function recordingDeps(seen: string[]): PluginDeps {
  const netns = (target: NetnsTarget) => ("name" in target ? `name:${target.name}` : `path:${target.path}`);
  return {
    pods: {
      createLink: async (spec) => {
        seen.push(`if:${spec.ifName}`, `if:${spec.bridge ?? "fn-br0"}`, `ns:name:${spec.nodeNetns}`, `ns:${netns(spec.podNetns)}`);
        return { hostIfName: "fnv00000000", hostMac: "02:00:00:00:00:01" };
      },
      configureLink: async (spec, link) => {
        seen.push(`if:${spec.ifName}`, `ns:${netns(spec.podNetns)}`);
        return { hostIfName: link.hostIfName, hostMac: link.hostMac, podIfName: spec.ifName, podMac: "02:00:00:00:00:02", mtu: spec.mtu, addresses: spec.addresses, gateways: spec.gateways };
      },
      detach: async (ref) => {
        seen.push(`ns:name:${ref.nodeNetns}`, `if:${ref.ifName}`);
        return { removed: false };
      },
      inspect: async (target, ifName) => {
        seen.push(`ns:${netns(target)}`, `if:${ifName}`);
        return undefined;
      },
      ensureBridge: async (netnsName, spec) => {
        seen.push(`ns:name:${netnsName}`, `if:${spec.name ?? "fn-br0"}`);
        return { name: spec.name ?? "fn-br0", mac: "", mtu: spec.mtu, addresses: spec.gateways, changed: true };
      },
      hostVethName: () => "fnv00000000",
      listHostVeths: async (netnsName, bridge) => {
        seen.push(`ns:name:${netnsName}`, `if:${bridge}`);
        return [];
      },
      detachLink: async (netnsName, name) => void seen.push(`ns:name:${netnsName}`, `if:${name}`),
    },
    readFile: () => undefined,
    exists: () => true,
    openStore: () => IpamStore.open(join(dir, "ipam.db")), // never where the fuzzed dataDir points
    trace: () => {},
  };
}

// Strings that probe the rules: iproute2 syntax, whitespace, control characters, unicode, long ones.
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom("e", "t", "h", "0", "#", '"', "'", "\\", " ", "\t", "\n", "\0", "/", ":", ".", "-", "_", "é", "\u0085") }),
  fc.constantFrom("eth0", "fn-br0", "eth0#", 'br"0', "br0\\", "/run/netns/pod", "/run/netns/pod x", "/proc/1/ns/net", "..", "a".repeat(16)),
);
const validEnv = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/pod", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" };
const randomEnv = fc.record(
  {
    CNI_COMMAND: fc.oneof(fc.constantFrom("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"), nasty),
    CNI_CONTAINERID: fc.oneof(fc.constantFrom("c1", "abc-123"), nasty),
    CNI_NETNS: nasty,
    CNI_IFNAME: nasty,
    CNI_ARGS: fc.oneof(fc.constantFrom("K8S_POD_NAME=a;K8S_POD_NAMESPACE=b"), nasty),
    CNI_PATH: nasty,
  },
  { requiredKeys: [] },
);
// A runtime's env with one variable replaced (and the command varied): most runs get past the command dispatch.
const envArb = fc.oneof(
  randomEnv,
  fc
    .tuple(fc.constantFrom("ADD", "DEL", "CHECK", "GC", "STATUS"), fc.constantFrom("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"), nasty)
    .map(([command, key, value]) => ({ ...validEnv, CNI_COMMAND: command, [key]: value })),
);
const base = { cniVersion: "1.1.0", name: "net", type: "flatnet", podCidrs: ["10.244.1.0/24"], nodeNetns: "node", "cni.dev/valid-attachments": [] };
const netconfArb = fc.oneof(
  { arbitrary: nasty, weight: 1 },
  { arbitrary: fc.json(), weight: 1 },
  // The real shape with one to three fields replaced by anything (names, numbers, nested values, nulls).
  {
    weight: 3,
    arbitrary: fc
      .dictionary(fc.constantFrom("cniVersion", "name", "type", "podCidrs", "bridge", "mtu", "nodeNetns", "subnetFile", "dataDir", "agentSocket", "prevResult", "dns", "cni.dev/valid-attachments"), fc.oneof(nasty, fc.jsonValue()), { maxKeys: 3 })
      .map((changes) => JSON.stringify({ ...base, ...changes })),
  },
  { arbitrary: fc.constantFrom("bridge", "nodeNetns", "mtu", "podCidrs").chain((key) => nasty.map((value) => JSON.stringify({ ...base, [key]: value }))), weight: 3 },
);

describe("CNI input fuzz (stdin and env)", () => {
  it("always settles with a result or CNI error JSON, and only valid names reach the kernel", async () => {
    await fc.assert(
      fc.asyncProperty(envArb, netconfArb, async (env, stdin) => {
        const seen: string[] = [];
        const response = await handleCni(env, stdin, recordingDeps(seen));
        expect(response.stdout).not.toMatch(/\n\s+at /);
        const answer = response.stdout === "" ? {} : (JSON.parse(response.stdout) as { code?: unknown; msg?: unknown });
        if (response.exitCode !== 0) {
          expect(CODES.has(answer.code as number), response.stdout).toBe(true);
          expect(typeof answer.msg).toBe("string");
        }
        for (const item of seen) {
          if (item.startsWith("if:")) expect(item.slice(3)).toMatch(INTERFACE_NAME_PATTERN);
          else if (item.startsWith("ns:name:")) expect(item.slice(8)).toMatch(NETNS_NAME);
          else expect(isNetnsPath(item.slice(8)), item).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  }, 60_000);
});
