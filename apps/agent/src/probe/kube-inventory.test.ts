import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, kubeInventory } from "./kube-source.ts";

// A loopback stand-in API server answering the two lists kubeInventory reads.
const NODES = {
  items: [
    // Set only the older single field (as a cluster without dual-stack IPAM may): the inventory must still see it.
    { metadata: { name: "node-1" }, spec: { podCIDR: "10.244.1.0/24" }, status: { addresses: [{ type: "InternalIP", address: "172.31.0.11" }], conditions: [{ type: "Ready", status: "True" }] } },
    { metadata: { name: "node-2" }, spec: { podCIDR: "10.244.2.0/24", podCIDRs: [] }, status: { addresses: [{ type: "ExternalIP", address: "198.51.100.2" }], conditions: [{ type: "Ready", status: "True" }] } },
    { metadata: { name: "node-3" }, spec: { podCIDRs: ["10.244.3.0/24", "fd00:10:244:3::/64"], unschedulable: true }, status: { conditions: [{ type: "Ready", status: "True" }] } },
  ],
};

describe("kubeInventory: Nodes as the one Node mapping reads them", () => {
  let dir: string;
  let api: Server;
  let kubeconfig: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-d1-kube-inventory-"));
    api = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(req.url === "/api/v1/nodes" ? NODES : { items: [] }));
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    kubeconfig = join(dir, "kubeconfig");
    const server = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    const config = { clusters: [{ name: "fn-d1", cluster: { server, "insecure-skip-tls-verify": true } }], users: [{ name: "fn-d1", user: { token: "fn-d1-token" } }] };
    writeFileSync(kubeconfig, JSON.stringify({ ...config, contexts: [{ name: "fn-d1", context: { cluster: "fn-d1", user: "fn-d1" } }], "current-context": "fn-d1" }));
  });

  afterAll(async () => {
    await new Promise((resolve) => api?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes spec.podCIDR when spec.podCIDRs is missing or empty", async () => {
    const inventory = await kubeInventory(KubeClient.load({ kubeconfig }), { namespace: "flatnet-system", labelSelector: "app=probe" });
    expect(inventory.nodes).toEqual([
      { name: "node-1", ready: true, podCidrs: ["10.244.1.0/24"], nodeIps: ["172.31.0.11"] },
      { name: "node-2", ready: true, podCidrs: ["10.244.2.0/24"], nodeIps: ["198.51.100.2"] },
      { name: "node-3", ready: false, podCidrs: ["10.244.3.0/24", "fd00:10:244:3::/64"], nodeIps: [] },
    ]);
  });
});
