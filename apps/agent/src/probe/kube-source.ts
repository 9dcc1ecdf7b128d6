import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type RequestOptions as HttpsRequestOptions } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import { z } from "zod";
import { DEFAULT_PROBE_PORT, dialResultSchema, kubeNodeAddresses, kubeNodePodCidrs, kubeNodeReady, kubeNodeSchema, type DialResult, type NodeEvidence, type NodeProbeState, type ProbeInventory, type RouteQuery } from "@flatnet/core";
import type { DialTransport, NodeStateSource } from "./engine.ts";
import { PROBE_TOKEN_HEADER } from "./dial-policy.ts";
import { ndjsonLines, problemDetail, readAll } from "../http/client.ts";
import { answeredEvidence, readEachNode } from "./node-state.ts";

// A Kubernetes cluster as a probe source: responders of deploy/probe-daemonset.yaml found through the API server,
// and reached through its pods/proxy subresource (exec-less: `POST .../pods/NAME:7471/proxy/v1/dial`).

export interface KubeTarget {
  kubeconfig?: string;
  context?: string;
  /** Namespace of the responder DaemonSet. */
  namespace: string;
  labelSelector: string;
}

export const DEFAULT_KUBE_TARGET: KubeTarget = {
  namespace: "flatnet-system",
  labelSelector: "app.kubernetes.io/component=probe-responder",
};

// Only the fields the inventory reads, validated at the boundary.
const nodeList = z.object({ items: z.array(kubeNodeSchema) });

const podList = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string(), namespace: z.string().optional(), deletionTimestamp: z.string().optional() }),
      spec: z.object({ nodeName: z.string().optional() }).optional(),
      status: z
        .object({
          phase: z.string().optional(),
          podIP: z.string().optional(),
          podIPs: z.array(z.object({ ip: z.string() })).optional(),
          conditions: z.array(z.object({ type: z.string(), status: z.string() })).optional(),
        })
        .optional(),
    }),
  ),
});

// An API server's Status names the failure in `message`; a proxied responder answers a problem with `detail`.
const STATUS_FIELDS = ["message", "detail"];

/** An authenticated client of one API server, from a kubeconfig (its current or given context). */
export class KubeClient {
  private constructor(private readonly config: KubeConfig, private readonly server: URL) {}

  static load(target: Pick<KubeTarget, "kubeconfig" | "context">): KubeClient {
    const config = new KubeConfig();
    if (target.kubeconfig !== undefined) config.loadFromFile(target.kubeconfig);
    else config.loadFromDefault();
    if (target.context !== undefined) {
      if (config.getContextObject(target.context) === null) {
        throw new Error(`context "${target.context}" is not in the kubeconfig; contexts: ${config.getContexts().map((c) => c.name).join(", ") || "none"}`);
      }
      config.setCurrentContext(target.context);
    }
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new Error("the kubeconfig has no current cluster; pass --context or --kubeconfig");
    return new KubeClient(config, new URL(cluster.server));
  }

  get serverName(): string {
    return this.config.getCurrentContext() || this.server.host;
  }

  /** A request to the API server with the kubeconfig's credentials; resolves with the response head. */
  async send(method: "GET" | "POST" | "DELETE", path: string, body?: unknown, timeoutMs = 30_000, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // https.RequestOptions: applyToHTTPSOptions adds the CA, client certificate and bearer token.
    const options: HttpsRequestOptions = {
      protocol: this.server.protocol,
      hostname: this.server.hostname.replace(/^\[|\]$/g, ""),
      port: this.server.port || (this.server.protocol === "https:" ? 443 : 80),
      path: `${this.server.pathname.replace(/\/$/, "")}${path}`,
      method,
      timeout: timeoutMs,
      headers: {
        ...headers,
        accept: "application/json",
        ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }),
      },
    };
    await this.config.applyToHTTPSOptions(options);
    const request = this.server.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(options, resolve);
      req.on("timeout", () => req.destroy(new Error(`no data from the API server for ${timeoutMs} ms (${method} ${path})`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** A request with a JSON body and answer, whatever its status (the caller branches on 404, 409, ...). */
  async requestJson(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<{ status: number; body: unknown; message: string }> {
    const response = await this.send(method, path, body);
    const text = await readAll(response);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text (a proxy's error page)
    }
    return { status: response.statusCode ?? 0, body: parsed, message: problemDetail(text, STATUS_FIELDS) };
  }

  async getJson<T>(path: string, schema: z.ZodType<T>): Promise<T> {
    const response = await this.send("GET", path);
    const text = await readAll(response);
    if (response.statusCode !== 200) throw new Error(`GET ${path} answered HTTP ${response.statusCode}: ${problemDetail(text, STATUS_FIELDS)}`);
    const parsed = schema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`GET ${path}: unexpected answer at "${parsed.error.issues[0]?.path.join(".")}"`);
    return parsed.data;
  }
}

/** Nodes (Ready and schedulable, pod CIDRs, addresses) and responder pods (Running and Ready, pod IPs) of a cluster. */
export async function kubeInventory(client: KubeClient, target: KubeTarget): Promise<ProbeInventory> {
  const selector = encodeURIComponent(target.labelSelector);
  const [nodes, pods] = await Promise.all([
    client.getJson("/api/v1/nodes", nodeList),
    client.getJson(`/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods?labelSelector=${selector}`, podList),
  ]);
  const ready = (conditions: { type: string; status: string }[] | undefined): boolean =>
    conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  return {
    cluster: { name: client.serverName, source: "kubernetes" },
    nodes: nodes.items.map((n) => ({
      name: n.metadata.name,
      ready: kubeNodeReady(n) === true && n.spec?.unschedulable !== true,
      podCidrs: kubeNodePodCidrs(n),
      nodeIps: kubeNodeAddresses(n, ["InternalIP", "ExternalIP"]),
    })),
    pods: pods.items
      .filter((p) => p.spec?.nodeName !== undefined)
      .map((p) => ({
        name: p.metadata.name,
        namespace: p.metadata.namespace ?? target.namespace,
        node: p.spec?.nodeName as string,
        ips: p.status?.podIPs?.map((i) => i.ip) ?? (p.status?.podIP ? [p.status.podIP] : []),
        ready: p.status?.phase === "Running" && ready(p.status?.conditions) && p.metadata.deletionTimestamp === undefined,
        port: DEFAULT_PROBE_PORT,
      })),
  };
}

/** The Secret (key `token`) holding the probe token the responders (deploy/probe-daemonset.yaml) and `flatnet check` share. */
export const PROBE_TOKEN_SECRET = "flatnet-probe-token";

const secretSchema = z.object({ data: z.record(z.string(), z.string()).optional() });

/** The probe token from the Secret in the responders' namespace; an error saying how to create it when missing. */
export async function kubeProbeToken(client: KubeClient, namespace: string): Promise<string> {
  const how = `create it: kubectl -n ${namespace} create secret generic ${PROBE_TOKEN_SECRET} --from-literal=token="$(openssl rand -hex 24)"`;
  let secret: z.infer<typeof secretSchema>;
  try {
    secret = await client.getJson(`/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${PROBE_TOKEN_SECRET}`, secretSchema);
  } catch (error) {
    throw new Error(`the probe responders dial only for the holder of Secret ${namespace}/${PROBE_TOKEN_SECRET}: ${(error as Error).message}; ${how}`);
  }
  const token = Buffer.from(secret.data?.token ?? "", "base64").toString("utf8").trim();
  if (token.length < 16) throw new Error(`Secret ${namespace}/${PROBE_TOKEN_SECRET} has no key "token" of at least 16 characters; ${how}`);
  return token;
}

/** Dial through the API server's pods/proxy to the source pod's responder, presenting the probe token: no exec, no port-forward. */
export function kubeProxyTransport(client: KubeClient, namespace: string, token?: string): DialTransport {
  return {
    async *dial(src, dialRequest): AsyncGenerator<DialResult> {
      const path = `/api/v1/namespaces/${encodeURIComponent(src.namespace ?? namespace)}/pods/${encodeURIComponent(src.pod)}:${src.port}/proxy/v1/dial`;
      const headers: Record<string, string> = token === undefined ? {} : { [PROBE_TOKEN_HEADER]: token };
      const response = await client.send("POST", path, dialRequest, Math.max(30_000, dialRequest.options.timeoutMs * 20), headers);
      if (response.statusCode !== 200) throw new Error(`pods/proxy to ${src.pod} answered HTTP ${response.statusCode}: ${problemDetail(await readAll(response), STATUS_FIELDS)}`);
      yield* ndjsonLines(response, (value) => dialResultSchema.parse(value));
    },
  };
}

/**
 * What a client outside the cluster can know about nodes for diagnosis: pod CIDRs and addresses (the agents'
 * unix sockets are on the nodes). Enough for "pod IP outside its node's pod CIDR" and the NAT classification.
 * With `relay`, the path tracer's evidence too: each node's agent answers through one Ready responder pod on that
 * node (`POST …/pods/NAME:7471/proxy/v1/evidence`, relayed to the agent's evidence socket; responder.ts).
 */
export function kubeStateSource(inventory: ProbeInventory, relay?: { client: KubeClient; namespace: string; token?: string }): NodeStateSource {
  return {
    ...(relay === undefined ? {} : { evidence: (queries: ReadonlyMap<string, RouteQuery[]>) => kubeEvidence(relay.client, relay.namespace, inventory, queries, relay.token) }),
    read: (names) =>
      readEachNode(names, async (name): Promise<NodeProbeState> => {
        const node = inventory.nodes.find((n) => n.name === name);
        return node === undefined
          ? { node: name, reachable: false, error: "not in the node list", podCidrs: [], nodeIps: [] }
          : { node: name, reachable: true, podCidrs: node.podCidrs, nodeIps: node.nodeIps };
      }),
  };
}

/** Each node's evidence through one Ready responder on it; a node whose responder or agent does not answer is left out. */
export function kubeEvidence(
  client: KubeClient,
  namespace: string,
  inventory: ProbeInventory,
  queries: ReadonlyMap<string, RouteQuery[]>,
  token?: string,
): Promise<Map<string, NodeEvidence>> {
  const headers: Record<string, string> = token === undefined ? {} : { [PROBE_TOKEN_HEADER]: token };
  return readEachNode(queries.keys(), async (node) => {
    const pod = inventory.pods.find((p) => p.node === node && p.ready !== false);
    if (pod === undefined) return undefined;
    const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace ?? namespace)}/pods/${encodeURIComponent(pod.name)}:${pod.port ?? DEFAULT_PROBE_PORT}/proxy/v1/evidence`;
    // As on the lab (agentEvidence): a node without evidence keeps its hops "unknown"; its diagnosis names why.
    return answeredEvidence(() => client.send("POST", path, { lookups: queries.get(node) }, 15_000, headers));
  });
}
