/**
 * A stand-in kube-apiserver for `flatnet check --kubeconfig` tests (loopback, plain HTTP, bearer token): lists the
 * topology's nodes and responder pods, serves the probe token Secret, and implements pods/proxy by forwarding to
 * each responder's control socket. Records what it saw, so tests can assert the calls.
 */
import { createServer, request, type Server } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { DEFAULT_KUBE_TARGET } from "../../apps/agent/src/probe/kube-source.ts";
import type { ProbeTopology } from "./topology.ts";

export interface FakeKubeApi {
  server: Server;
  kubeconfig: string;
  /** `METHOD URL` of every request. */
  seen: string[];
  /** The probe token header of every proxied request. */
  presented: string[];
  /** Responder pods to report as not Ready. */
  notReady: Set<string>;
  close(): Promise<void>;
}

export async function startFakeKubeApi(topo: ProbeTopology, options: { token: string; probeToken: string; context: string }): Promise<FakeKubeApi> {
  const seen: string[] = [];
  const presented: string[] = [];
  const notReady = new Set<string>();
  const json = (res: import("node:http").ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.headers.authorization !== `Bearer ${options.token}`) return json(res, 401, { kind: "Status", message: "Unauthorized" });
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/api/v1/nodes") {
      const items = topo.nodes.map((n) => ({
        metadata: { name: n.name },
        spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] },
        status: { conditions: [{ type: "Ready", status: "True" }], addresses: [{ type: "InternalIP", address: n.ip }, { type: "Hostname", address: n.name }] },
      }));
      return json(res, 200, { kind: "NodeList", items });
    }
    if (req.method === "GET" && url.pathname === "/api/v1/namespaces/flatnet-system/pods") {
      if (url.searchParams.get("labelSelector") !== DEFAULT_KUBE_TARGET.labelSelector) return json(res, 400, { kind: "Status", message: `unexpected labelSelector ${url.searchParams.get("labelSelector")}` });
      const items = topo.pods.map((p) => ({
        metadata: { name: p.name, namespace: "flatnet-system" },
        spec: { nodeName: p.node },
        status: { phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }], conditions: [{ type: "Ready", status: notReady.has(p.name) ? "False" : "True" }] },
      }));
      return json(res, 200, { kind: "PodList", items });
    }
    if (req.method === "GET" && url.pathname === "/api/v1/namespaces/flatnet-system/secrets/flatnet-probe-token") {
      return json(res, 200, { kind: "Secret", data: { token: Buffer.from(options.probeToken).toString("base64") } });
    }
    const proxy = /^\/api\/v1\/namespaces\/flatnet-system\/pods\/([^/:]+):7471\/proxy(\/.*)$/.exec(url.pathname);
    if (proxy !== null) {
      presented.push(String(req.headers["x-flatnet-probe-token"]));
      const upstream = request({ socketPath: topo.controlSocket(decodeURIComponent(proxy[1]!)), path: proxy[2], method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", (error) => json(res, 503, { kind: "Status", message: `error trying to reach service: ${error.message}` }));
      return void req.pipe(upstream);
    }
    json(res, 404, { kind: "Status", message: "not found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const kubeconfig = join(topo.dir, "kubeconfig");
  const c = options.context;
  writeFileSync(kubeconfig, [
    "apiVersion: v1", "kind: Config", `current-context: ${c}`,
    "clusters:", `- name: ${c}`, `  cluster: { server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true }`, // client-node refuses plain HTTP otherwise
    "users:", `- name: ${c}`, `  user: { token: ${options.token} }`,
    "contexts:", `- name: ${c}`, `  context: { cluster: ${c}, user: ${c} }`, "",
  ].join("\n"));
  return { server, kubeconfig, seen, presented, notReady, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
