/**
 * The extension's Kubernetes source through the real client-node informers against the fake kube-apiserver
 * (test/fake-apiserver): nodes arrive and change live; a resource the server cannot serve (it has no pods)
 * shows "reconnecting" with the reason, and the node list stays usable meanwhile.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterView } from "../../apps/vscode/src/model/cluster-view.ts";
import { KubeSource } from "../../apps/vscode/src/sources/kube-source.ts";
import { loadKubeConfig } from "../../apps/vscode/src/sources/kubeconfig.ts";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";

const node = (name: string, cidr: string, ip: string) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, annotations: { "flatnet.io/backend": "host-gw" } },
  spec: { podCIDR: cidr, podCIDRs: [cidr] },
  status: { addresses: [{ type: "InternalIP", address: ip }], conditions: [{ type: "Ready", status: "True" }] },
});

async function until(source: KubeSource, what: string, predicate: (view: ClusterView) => boolean): Promise<ClusterView> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const view = source.view();
    if (view && predicate(view)) return view;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last view: ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("KubeSource against the fake kube-apiserver", () => {
  const server = new FakeApiServer();
  const dir = mkdtempSync(join(tmpdir(), "fn-tv-kube-"));
  let source: KubeSource;

  beforeAll(async () => {
    await server.start();
    server.putNode(node("n1", "10.244.1.0/24", "172.31.0.11"));
    server.putNode(node("n2", "10.244.2.0/24", "172.31.0.12"));
    const path = join(dir, "config");
    writeFileSync(path, server.kubeconfig());
    const { config, loaded } = loadKubeConfig([path]);
    expect(loaded).toEqual([path]);
    source = new KubeSource(config, { context: "fake", agentSelector: { "app.kubernetes.io/name": "flatnet" }, debounceMs: 20 });
    source.start(() => {});
  });

  afterAll(async () => {
    source?.dispose();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists nodes with InternalIP, pod CIDR and backend", async () => {
    const view = await until(source, "two nodes", (v) => v.nodes.length === 2);
    expect(view.nodes.map((n) => ({ name: n.name, ips: n.internalIps, cidrs: n.podCidrs, backend: n.backend }))).toEqual([
      { name: "n1", ips: ["172.31.0.11"], cidrs: ["10.244.1.0/24"], backend: "host-gw" },
      { name: "n2", ips: ["172.31.0.12"], cidrs: ["10.244.2.0/24"], backend: "host-gw" },
    ]);
  });

  it("follows the watch: a new node appears and a deleted one goes", async () => {
    server.putNode(node("n3", "10.244.3.0/24", "172.31.0.13"));
    await until(source, "n3 added", (v) => v.nodes.some((n) => n.name === "n3"));
    server.deleteNode("n1");
    const view = await until(source, "n1 deleted", (v) => !v.nodes.some((n) => n.name === "n1"));
    expect(view.nodes.map((n) => n.name).sort()).toEqual(["n2", "n3"]);
  });

  it("says it is reconnecting, with the reason, while a watch cannot be served", async () => {
    // The fake serves no pods: the pod informer fails and is retried with backoff.
    const view = await until(source, "reconnecting", (v) => v.status?.state === "reconnecting");
    expect(view.status?.message).toMatch(/^watch disconnected \(HTTP 404: the server could not find the requested resource \(GET \/api\/v1\/pods\)\), retrying in \d+ s$/);
    expect(view.nodes.length).toBeGreaterThan(0);
  });

  it("restarts every failed informer on its own: nodes come back after the server does, while pods still fail", async () => {
    server.setUnavailable(true);
    const path = join(dir, "config");
    const { config } = loadKubeConfig([path]);
    const second = new KubeSource(config, { context: "fake", agentSelector: {}, debounceMs: 20 });
    second.start(() => {});
    try {
      await until(second, "reconnecting while the server is down", (v) => v.status?.state === "reconnecting" && v.nodes.length === 0);
      server.setUnavailable(false);
      const view = await until(second, "nodes after recovery", (v) => v.nodes.length === 2);
      expect(view.nodes.map((n) => n.name).sort()).toEqual(["n2", "n3"]);
    } finally {
      second.dispose();
    }
  }, 30_000);
});
