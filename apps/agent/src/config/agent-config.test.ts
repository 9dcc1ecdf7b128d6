import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { envName, flagName, resolveAgentSettings } from "./agent-config.ts";

const dir = mkdtempSync(join(tmpdir(), "fnk-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Flags as commander hands them over: value plus source ("cli" when typed, "default" otherwise). */
function flags(typed: Record<string, unknown>, defaults: Record<string, unknown> = { resyncInterval: "10s", logLevel: "info", underlayIp: [] }) {
  return {
    flags: { ...defaults, ...typed },
    flagSource: (key: string) => (key in typed ? "cli" : key in defaults ? "default" : undefined),
  };
}

describe("resolveAgentSettings", () => {
  it("applies flags > env > file > defaults, per key, and says where each came from", () => {
    const config = file("a.yaml", "datastore: etcd\netcd-endpoints: [http://10.0.0.1:2379]\nresyncInterval: 30s\nlogLevel: debug\nnode: from-file\n");
    const settings = resolveAgentSettings({
      ...flags({ node: "from-flag" }),
      env: { FLATNET_RESYNC_INTERVAL: "5s", FLATNET_CONFIG: config },
    });
    expect(settings).toEqual({
      node: "from-flag",
      datastore: "etcd",
      etcdEndpoints: ["http://10.0.0.1:2379"],
      resyncInterval: "5s",
      logLevel: "debug",
      sources: {
        node: "flag --node",
        datastore: `${config} key "datastore"`,
        etcdEndpoints: `${config} key "etcdEndpoints"`,
        resyncInterval: "env FLATNET_RESYNC_INTERVAL",
        logLevel: `${config} key "logLevel"`,
      },
    });
  });

  it("falls back to the flag defaults and parses lists and booleans from env", () => {
    const settings = resolveAgentSettings({
      ...flags({}),
      env: { FLATNET_ETCD_ENDPOINTS: "http://a:2379, http://b:2379", FLATNET_MASQUERADE: "false", FLATNET_UNDERLAY_IP: "172.31.0.11,fd00::11" },
    });
    expect(settings).toMatchObject({
      resyncInterval: "10s",
      logLevel: "info",
      etcdEndpoints: ["http://a:2379", "http://b:2379"],
      masquerade: false,
      underlayIp: ["172.31.0.11", "fd00::11"],
    });
  });

  it.each([
    ["a bad flag", { ...flags({ datastore: "consul" }), env: {} }, /flag --datastore = "consul": must be one of "embedded", "etcd", "kubernetes"/],
    ["a bad env var", { ...flags({}), env: { FLATNET_RESYNC_INTERVAL: "soon" } }, /env FLATNET_RESYNC_INTERVAL = "soon": must be a duration/],
    ["a bad file value", { ...flags({}), env: {}, configPath: file("b.json", '{"etcdEndpoints": ["not a url"]}') }, /key "etcdEndpoints" = \["not a url"\]: must be a list of URLs/],
    ["an unknown file key", { ...flags({}), env: {}, configPath: file("c.yaml", "podCIDRs: x\n") }, /key "podCIDRs" is unknown/],
    ["a file that is not a mapping", { ...flags({}), env: {}, configPath: file("d.yaml", "- a\n") }, /must hold a mapping/],
    ["a missing file", { ...flags({}), env: {}, configPath: join(dir, "nope.yaml") }, /cannot be read/],
    ["broken YAML", { ...flags({}), env: {}, configPath: file("e.yaml", "a: [\n") }, /is not YAML or JSON/],
    ["a bad namespace", { ...flags({ leaseNamespace: "Kube_System" }), env: {} }, /flag --lease-namespace = "Kube_System": must be a Kubernetes namespace name/],
  ])("rejects %s with a message naming key, layer and rule", (_label, layers, message) => {
    expect(() => resolveAgentSettings(layers)).toThrow(message);
    try {
      resolveAgentSettings(layers);
    } catch (error) {
      expect((error as { code?: string }).code).toBe("ERR_INVALID_CONFIG");
    }
  });

  it.each([
    ["etcdEndpoints", "FLATNET_ETCD_ENDPOINTS", "--etcd-endpoints"],
    ["node", "FLATNET_NODE", "--node"],
    ["podCidrAllocator", "FLATNET_POD_CIDR_ALLOCATOR", "--pod-cidr-allocator"],
  ])("spells %s as %s and %s", (key, env, flag) => {
    expect([envName(key), flagName(key)]).toEqual([env, flag]);
  });
});
