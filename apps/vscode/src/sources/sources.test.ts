import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readFixture } from "./fixture-source.ts";
import { kubeconfigPaths, loadKubeConfig } from "./kubeconfig.ts";
import { labStateToView, readLabState } from "./lab-source.ts";

const dir = mkdtempSync(join(tmpdir(), "fn-tv-sources-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(name: string, context: string, server: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
current-context: ${context}
clusters: [{ name: ${context}, cluster: { server: "${server}" } }]
users: [{ name: ${context}, user: { token: t } }]
contexts: [{ name: ${context}, context: { cluster: ${context}, user: ${context} } }]
`,
  );
  return path;
}

describe("kubeconfig discovery", () => {
  it.each([
    [["/a"], "/b:/c", ["/a"]],
    [[], "/b:/c", ["/b", "/c"]],
    [[], " /b :: ", ["/b"]],
    [[], undefined, ["/home/me/.kube/config"]],
    [[], "", ["/home/me/.kube/config"]],
  ])("setting %j, KUBECONFIG %j -> %j", (setting, env, paths) => {
    expect(kubeconfigPaths(setting, env, "/home/me", ":")).toEqual(paths);
  });

  it("merges files in order, keeps the first file's current-context, skips missing files and names broken ones", () => {
    const first = kubeconfig("first.yaml", "kind-a", "https://127.0.0.1:6443");
    const second = kubeconfig("second.yaml", "kind-b", "https://127.0.0.1:7443");
    const broken = join(dir, "broken.yaml");
    writeFileSync(broken, "clusters: [\n");
    const { config, errors, loaded } = loadKubeConfig([join(dir, "missing.yaml"), first, second, broken]);
    expect(loaded).toEqual([first, second]);
    expect(config.getCurrentContext()).toBe("kind-a");
    expect(config.getContexts().map((c) => c.name)).toEqual(["kind-a", "kind-b"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^kubeconfig "${broken}" cannot be read: `));
  });
});

// A state file as `flatnet lab up` writes it (core's labStateSchema).
const labState = {
  version: 1,
  prefix: "fn-",
  backend: "host-gw",
  dualStack: false,
  podsPerNode: 1,
  createdAt: "2026-12-06T00:00:00.000Z",
  clusterCidrs: ["10.244.0.0/16"],
  namespaces: ["fn-node1", "fn-pod-node1-1"],
  nodes: [{ name: "node1", index: 1, netns: "fn-node1", segment: 0, underlayIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24"], agent: { pid: 42, socket: "/x.sock", startTime: "1", log: "/l" } }],
  pods: [{ name: "pod-node1-1", node: "node1", index: 1, containerId: "lab-fn-pod-node1-1", ifName: "eth0", ips: ["10.244.1.2"], netns: "fn-pod-node1-1" }],
};

describe("lab detection", () => {
  it.each([
    ["no lab", undefined, { kind: "absent" }],
    ["not JSON", "{", { kind: "invalid", message: 'lab state "STATE" is not JSON' }],
    ["wrong shape", JSON.stringify({ ...labState, nodes: [{ ...labState.nodes[0], name: "" }] }), { kind: "invalid", message: 'lab state "STATE" is invalid at "nodes.0.name": Too small: expected string to have >=1 characters' }],
    ["not a lab state file", JSON.stringify({ nodes: [] }), { kind: "invalid", message: 'lab state "STATE" is invalid at "version": Invalid input: expected 1' }],
  ])("%s", (_name, content, expected) => {
    const stateDir = mkdtempSync(join(dir, "lab-"));
    if (content !== undefined) writeFileSync(join(stateDir, "state.json"), content);
    const result = readLabState(stateDir);
    expect(JSON.parse(JSON.stringify(result).replaceAll(join(stateDir, "state.json"), "STATE"))).toEqual(expected);
  });

  it("maps the lab's state file to a cluster view", () => {
    const stateDir = join(dir, "lab-ok");
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, "state.json"), JSON.stringify(labState));
    const result = readLabState(stateDir);
    if (result.kind !== "ok") throw new Error(`expected ok, got ${result.kind}`);
    expect(labStateToView(stateDir, result.state, (agent) => (agent?.pid === 42 ? "healthy" : "unknown"))).toEqual({
      id: `lab:${stateDir}`,
      name: "flatnet lab (fn)",
      source: "lab",
      clusterCidrs: ["10.244.0.0/16"],
      nodes: [{ name: "node1", internalIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24"], backend: "host-gw", agent: "healthy", ready: true }],
      pods: [{ namespace: "lab", name: "pod-node1-1", node: "node1", ips: ["10.244.1.2"], phase: "Running", hostNetwork: false }],
      status: { state: "ready" },
    });
  });
});

describe("readFixture", () => {
  it("names the file and the broken field", () => {
    const path = join(dir, "fixture.json");
    writeFileSync(path, JSON.stringify({ id: "x", name: "x", source: "ftp", nodes: [], pods: [] }));
    expect(readFixture(path).status).toEqual({ state: "error", message: `fixture "${path}" is invalid at "source": Invalid option: expected one of "kubernetes"|"lab"|"fixture"` });
  });
});
