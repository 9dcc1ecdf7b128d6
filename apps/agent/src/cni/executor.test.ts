import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gcNetworkList } from "../../test-support/cni-list.ts";
import { addNetworkList, CniPluginError, type Conflist, delNetworkList, pluginConfig, readCachedResult } from "./executor.ts";
import { negotiateCniVersion } from "./version.ts";

// A fake plugin: records its env and stdin, answers ADD with its prevResult plus one interface named after itself.
const FAKE = `#!/bin/sh
in=$(cat)
echo "$CNI_COMMAND $in" >> "$(dirname "$0")/calls.log"
[ "$(basename "$0")" = "broken" ] && { printf '{"cniVersion":"1.0.0","code":7,"msg":"bad config"}'; exit 1; }
[ "$CNI_COMMAND" = ADD ] && printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s"}]}' "$(basename "$0")"
exit 0
`;

let dir: string;
const calls = () => readFileSync(join(dir, "calls.log"), "utf8").trim().split("\n");
const options = () => ({ binDirs: [dir], cacheDir: join(dir, "cache") });
const list = (plugins: Conflist["plugins"]): Conflist => ({ cniVersion: "1.1.0", name: "net", plugins });
const rt = { containerId: "c1", netns: "/run/netns/p", ifName: "eth0", args: { IgnoreUnknown: "1" }, capabilityArgs: { portMappings: [{ hostPort: 80 }] } };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fn-cni-exec-"));
  for (const name of ["one", "two", "broken"]) {
    writeFileSync(join(dir, name), FAKE);
    chmodSync(join(dir, name), 0o755);
  }
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("conflist executor (libcni semantics)", () => {
  it("injects the list's name and version, and runtimeConfig only for declared capabilities", () => {
    const l = list([{ type: "one", cniVersion: "0.3.1", capabilities: { portMappings: true, bandwidth: true } }]);
    expect(pluginConfig(l, l.plugins[0]!, rt, { ips: [] })).toEqual({
      type: "one", cniVersion: "1.1.0", name: "net", capabilities: { portMappings: true, bandwidth: true },
      runtimeConfig: { portMappings: [{ hostPort: 80 }] }, prevResult: { ips: [] },
    });
    expect(pluginConfig(l, { type: "two" }, rt, undefined)).toEqual({ type: "two", cniVersion: "1.1.0", name: "net" });
  });

  it("ADD chains prevResult in order and caches the last result; DEL runs in reverse with the cached result", async () => {
    const l = list([{ type: "one" }, { type: "two" }]);
    const result = await addNetworkList(l, rt, options());
    expect(result).toEqual({ cniVersion: "1.0.0", interfaces: [{ name: "two" }] });
    const [first, second] = calls();
    expect(first).toMatch(/^ADD /);
    expect(JSON.parse(first!.slice(4))).not.toHaveProperty("prevResult");
    expect(JSON.parse(second!.slice(4)).prevResult).toEqual({ cniVersion: "1.0.0", interfaces: [{ name: "one" }] });
    expect(readCachedResult(l, rt, options())).toEqual(result);

    await delNetworkList(l, rt, options());
    const dels = calls().slice(2).map((line) => JSON.parse(line.slice(4)) as { type: string; prevResult: unknown });
    expect(dels.map((d) => d.type)).toEqual(["two", "one"]);
    expect(dels.every((d) => JSON.stringify(d.prevResult) === JSON.stringify(result))).toBe(true);
    expect(readCachedResult(l, rt, options())).toBeUndefined();
  });

  it("reports a plugin's error JSON as a CniPluginError with its code", async () => {
    const error = await addNetworkList(list([{ type: "one" }, { type: "broken" }]), rt, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CniPluginError);
    expect(error).toMatchObject({ plugin: "broken", command: "ADD", code: 7, msg: "bad config" });
  });

  it("names a plugin that is not installed", async () => {
    const error = await addNetworkList(list([{ type: "missing" }]), rt, options()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 7 });
    expect((error as Error).message).toContain('"missing" not found');
  });

  it("GC deletes cached attachments not listed, then sends GC with cni.dev/valid-attachments to each plugin", async () => {
    const l = list([{ type: "one" }]);
    await addNetworkList(l, rt, options());
    await addNetworkList(l, { ...rt, containerId: "c2" }, options());
    await gcNetworkList(l, [{ containerId: "c2", ifName: "eth0" }], options());
    const tail = calls().slice(2);
    expect(tail[0]).toMatch(/^DEL /);
    expect(tail[1]).toMatch(/^GC /);
    expect(JSON.parse(tail[1]!.slice(3))["cni.dev/valid-attachments"]).toEqual([{ containerID: "c2", ifname: "eth0" }]);
    expect(readCachedResult(l, rt, options())).toBeUndefined();
    expect(readCachedResult(l, { ...rt, containerId: "c2" }, options())).toBeDefined();
  });

  // The shipped conflist (deploy/configmap.yaml, the lab's install): one file for libcni 1.1.x and >= 1.2 runtimes.
  const both = { cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"] };

  it.each<[string, { cniVersion?: string; cniVersions?: string[] }, string, string]>([
    ["libcni 1.1.x (spec 1.0.0) reads cniVersion", both, "1.0.0", "1.0.0"],
    ["libcni >= 1.2 (spec 1.1.0) picks the highest of cniVersions", both, "1.1.0", "1.1.0"],
    ["a runtime of a later spec still picks the highest listed", both, "1.2.0", "1.1.0"],
    ["versions above the runtime's spec are skipped", { cniVersion: "0.4.0", cniVersions: ["0.4.0", "1.0.0", "1.1.0"] }, "1.0.0", "1.0.0"],
    ["cniVersion alone is taken as written", { cniVersion: "1.1.0" }, "1.0.0", "1.1.0"],
    ["cniVersions alone", { cniVersions: ["1.1.0", "1.0.0"] }, "1.1.0", "1.1.0"],
    ["nothing usable in cniVersions: cniVersion as written", { cniVersion: "1.1.0", cniVersions: ["1.1.0"] }, "1.0.0", "1.1.0"],
  ])("negotiates the version as libcni does: %s", (_label, versions, spec, expected) => {
    expect(negotiateCniVersion(versions, spec)).toBe(expected);
  });

  it("a list without any version is a bug, named", () => {
    expect(() => negotiateCniVersion({})).toThrow("neither cniVersion nor cniVersions");
  });

  it.each([
    ["1.0.0", "1.0.0", []],
    ["1.1.0", "1.1.0", ["GC"]],
  ])("the shipped versions run at %s for a runtime of spec %s: plugins get it, GC only from 1.1.0", async (spec, expected, extra) => {
    const l: Conflist = { ...both, name: "net", plugins: [{ type: "one" }] };
    await addNetworkList(l, rt, { ...options(), specVersion: spec });
    await gcNetworkList(l, [{ containerId: "c1", ifName: "eth0" }], { ...options(), specVersion: spec });
    const seen = calls().map((line) => [line.split(" ")[0], (JSON.parse(line.slice(line.indexOf(" ") + 1)) as { cniVersion: string }).cniVersion]);
    expect(seen).toEqual([["ADD", expected], ...extra.map((command) => [command, expected])]);
  });
});
