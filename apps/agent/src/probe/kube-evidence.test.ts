import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeEvidence, ProbeInventory, RouteQuery } from "@flatnet/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentStandIn, startAgentStandIn } from "./agent-stand-in.test-util.ts";
import { PROBE_TOKEN_HEADER } from "./dial-policy.ts";
import { KubeClient, kubeStateSource } from "./kube-source.ts";
import { type Responder, startResponder } from "./responder.ts";

// `flatnet check --kubeconfig` gathers each node's evidence through the API server's pods/proxy to one responder on
// that node, which relays it to the node agent's evidence socket. Loopback only: a stand-in API server forwards
// pods/proxy to a real responder (TCP on 127.0.0.1), whose agent socket is a stand-in agent that answers evidence.

const TOKEN = "fn-tw-kube-evidence-token-0123";
const EVIDENCE: NodeEvidence = {
  node: "node-2",
  role: "node",
  lookups: [{ query: { dst: "10.244.2.2", from: "10.244.1.2", iifOf: "172.31.0.11" }, iif: "eth0", error: "Invalid argument" }],
  routes: [{ dst: "10.244.2.2", type: "blackhole", protocol: "boot" }],
  policyRules: [],
  firewall: [],
  policies: [],
  neighbours: [],
  fdb: [],
  links: [],
  sysctls: { rpFilter: {} },
  errors: [],
};

describe("evidence on a cluster: pods/proxy -> the node's responder -> its agent (issue 10.4)", () => {
  let dir: string;
  let agent: AgentStandIn;
  let api: Server;
  let responder: Responder;
  const proxied: string[] = [];
  let kubeconfig: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-tw-kube-evidence-"));
    agent = await startAgentStandIn(join(dir, "agent-evidence.sock"), () => EVIDENCE);
    responder = await startResponder({
      identity: { pod: "probe-2", namespace: "flatnet-system", node: "node-2", podIps: ["127.0.0.1"], nodePodCidrs: ["10.244.2.0/24"] },
      port: await new Promise<number>((resolve) => {
        const probe = createServer().listen(0, "127.0.0.1", () => {
          const { port } = probe.address() as AddressInfo;
          probe.close(() => resolve(port));
        });
      }),
      listenAddresses: ["127.0.0.1"],
      dial: { token: TOKEN, allowedCidrs: [] },
      agentSocket: join(dir, "agent-evidence.sock"),
    });
    api = createServer((req, res) => {
      const proxy = /^\/api\/v1\/namespaces\/flatnet-system\/pods\/([^/:]+):7471\/proxy(\/.*)$/.exec(req.url ?? "");
      if (proxy === null || proxy[1] !== "probe-2") {
        res.writeHead(404, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ kind: "Status", message: "not found" }));
      }
      proxied.push(`${req.method} ${proxy[2]} ${String(req.headers[PROBE_TOKEN_HEADER])}`);
      const upstream = request({ host: "127.0.0.1", port: responder.port, path: proxy[2], method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, [
      "apiVersion: v1", "kind: Config", "current-context: fn-tw",
      "clusters:", "- name: fn-tw", `  cluster: { server: "http://127.0.0.1:${(api.address() as AddressInfo).port}", insecure-skip-tls-verify: true }`,
      "users:", "- name: fn-tw", "  user: { token: fn-tw-api-token }",
      "contexts:", "- name: fn-tw", "  context: { cluster: fn-tw, user: fn-tw }", "",
    ].join("\n"));
  });

  afterAll(async () => {
    await responder?.close();
    await new Promise((resolve) => api?.close(resolve));
    await new Promise((resolve) => agent?.server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const inventory: ProbeInventory = {
    cluster: { name: "fn-tw", source: "kubernetes" },
    nodes: [
      { name: "node-1", podCidrs: ["10.244.1.0/24"], nodeIps: ["172.31.0.11"] },
      { name: "node-2", podCidrs: ["10.244.2.0/24"], nodeIps: ["172.31.0.12"] },
    ],
    pods: [
      { name: "probe-1", namespace: "flatnet-system", node: "node-1", ips: ["10.244.1.2"] }, // no such pod behind the proxy
      { name: "probe-2-old", namespace: "flatnet-system", node: "node-2", ips: ["10.244.2.9"], ready: false },
      { name: "probe-2", namespace: "flatnet-system", node: "node-2", ips: ["10.244.2.2"] },
    ],
  };
  const queries = new Map<string, RouteQuery[]>([
    ["node-1", [{ dst: "10.244.2.2", from: "10.244.1.2", iifOf: "10.244.1.2" }]],
    ["node-2", [{ dst: "10.244.2.2", from: "10.244.1.2", iifOf: "172.31.0.11" }]],
  ]);

  it("asks each node's Ready responder with the probe token and returns its agent's evidence; a node that cannot answer is left out", async () => {
    agent.received.length = 0;
    proxied.length = 0;
    const source = kubeStateSource(inventory, { client: KubeClient.load({ kubeconfig }), namespace: "flatnet-system", token: TOKEN });
    const evidence = await source.evidence!(queries);
    expect([...evidence.keys()]).toEqual(["node-2"]);
    expect(evidence.get("node-2")).toEqual(EVIDENCE);
    expect(proxied).toEqual([`POST /v1/evidence ${TOKEN}`]);
    expect(agent.received.map((r) => r.body)).toEqual([{ lookups: queries.get("node-2") }]);
  });

  it("without the probe token the responder refuses, and no evidence is made up", async () => {
    agent.received.length = 0;
    const source = kubeStateSource(inventory, { client: KubeClient.load({ kubeconfig }), namespace: "flatnet-system" });
    expect((await source.evidence!(queries)).size).toBe(0);
    expect(agent.received).toEqual([]);
  });

  it("without a relay (an older caller) the source offers no evidence at all", () => {
    expect(kubeStateSource(inventory).evidence).toBeUndefined();
  });
});
