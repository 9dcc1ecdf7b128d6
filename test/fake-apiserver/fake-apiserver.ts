import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from "./patch.ts";
import { FakeWorkloads } from "./workloads.ts";

// A FAKE kube-apiserver for tests: it speaks the real HTTP protocol for the two resources the agent uses
// (core/v1 Nodes and coordination.k8s.io/v1 Leases), with resourceVersions, list/watch, bookmarks, 410 Gone,
// three patch types and optimistic concurrency; and, for `flatnet check --deploy`, the workloads of workloads.ts.
// It is not Kubernetes: no admission, no auth, no field selectors.

type Obj = Record<string, any>;
interface Event { rv: number; type: "ADDED" | "MODIFIED" | "DELETED"; resource: "nodes" | "leases"; object: Obj }
interface WatchStream { resource: "nodes" | "leases"; namespace?: string; res: ServerResponse; bookmarks: boolean; rv: number }

export interface FakeApiServerOptions {
  /** Oldest events kept for watch replay; a watch from an older resourceVersion gets 410 Gone. Default 1000. */
  historyLimit?: number;
}

export class FakeApiServer {
  private server: Server | undefined;
  private rv = 100;
  private readonly nodes = new Map<string, Obj>();
  private readonly leases = new Map<string, Obj>();
  private history: Event[] = [];
  /** Events at or below this resourceVersion are gone (compacted). */
  private compactedRv = 0;
  private readonly streams = new Set<WatchStream>();
  private readonly faults: { status: number; count: number; match?: RegExp }[] = [];
  private unavailable = false;
  /** Every request, as "METHOD path?query", for assertions. */
  readonly requests: string[] = [];
  url = "";
  /** Namespaces, Pods (with pods/proxy) and DaemonSets: workloads.ts. */
  readonly workloads = new FakeWorkloads({
    nextRv: () => ++this.rv,
    json: (res, code, body) => this.json(res, code, body),
    status: (res, code, reason, message) => this.status(res, code, reason, message),
    readBody,
  });

  constructor(private readonly options: FakeApiServerOptions = {}) {}

  /** Listens on loopback (default) or on a unix socket `path` (a lab relays a node's TCP port to it). */
  async start(path?: string): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error) => this.status(res, 500, "InternalError", String(error)));
    });
    if (path !== undefined) {
      await new Promise<void>((resolve) => this.server!.listen(path, resolve));
      this.url = `http://unix:${path}`;
      return this.url;
    }
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** A kubeconfig (YAML-compatible JSON) pointing at this server with a dummy token. */
  kubeconfig(server = this.url): string {
    return JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      // client-node refuses plain http unless TLS verification is off; the fake serves http on loopback only.
      clusters: [{ name: "fake", cluster: { server, "insecure-skip-tls-verify": true } }],
      users: [{ name: "fake", user: { token: "fake-token" } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "fake" } }],
      "current-context": "fake",
    });
  }

  // ---- test controls (what kubelet, kube-controller-manager or an operator would do) ----

  /** Creates or replaces a Node as kubelet would register it. */
  putNode(node: Obj): Obj {
    const name = node.metadata.name as string;
    const existing = this.nodes.get(name);
    const stored = this.store("nodes", name, { apiVersion: "v1", kind: "Node", ...node }, existing);
    return stored;
  }

  getNode(name: string): Obj | undefined {
    return this.nodes.get(name);
  }

  deleteNode(name: string): void {
    const node = this.nodes.get(name);
    if (!node) return;
    this.nodes.delete(name);
    this.emit("nodes", "DELETED", { ...node, metadata: { ...node.metadata, resourceVersion: String(++this.rv) } });
  }

  getLease(namespace: string, name: string): Obj | undefined {
    return this.leases.get(`${namespace}/${name}`);
  }

  /** Forgets the watch history (etcd compaction): watches from older resourceVersions get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Ends every open watch stream mid-stream (as an apiserver restart or a load balancer would). */
  dropWatches(): void {
    for (const stream of this.streams) stream.res.destroy();
    this.streams.clear();
  }

  /** Sends a BOOKMARK to every watch that asked for them. */
  bookmark(): void {
    for (const stream of this.streams) {
      if (!stream.bookmarks) continue;
      const kind = stream.resource === "nodes" ? "Node" : "Lease";
      const apiVersion = stream.resource === "nodes" ? "v1" : "coordination.k8s.io/v1";
      this.write(stream, { type: "BOOKMARK", object: { kind, apiVersion, metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  /** The next count requests whose "METHOD path" matches get this HTTP status. */
  failNext(count: number, status = 503, match?: RegExp): void {
    this.faults.push({ status, count, ...(match ? { match } : {}) });
  }

  /** While true every request gets 503 and open watches are dropped (apiserver down). */
  setUnavailable(down: boolean): void {
    this.unavailable = down;
    if (down) this.dropWatches();
  }

  openWatches(): number {
    return this.streams.size;
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const line = `${req.method} ${url.pathname}${url.search}`;
    this.requests.push(line);
    if (this.unavailable) return this.status(res, 503, "ServiceUnavailable", "the fake apiserver is down");
    const fault = this.faults.find((f) => f.count > 0 && (!f.match || f.match.test(line)));
    if (fault) {
      fault.count--;
      return this.status(res, fault.status, fault.status === 503 ? "ServiceUnavailable" : "InternalError", `injected fault ${fault.status}`);
    }
    const parts = url.pathname.split("/").filter(Boolean);
    if (FakeWorkloads.handles(parts)) return this.workloads.handle(req, res, url, parts);
    const body = req.method === "GET" || req.method === "DELETE" ? undefined : await readBody(req);
    // /api/v1/nodes[/name]
    if (parts[0] === "api" && parts[1] === "v1" && parts[2] === "nodes" && parts.length <= 4) {
      return this.resource(req, res, url, "nodes", undefined, parts[3], body);
    }
    // /apis/coordination.k8s.io/v1/namespaces/ns/leases[/name]
    if (parts[0] === "apis" && parts[1] === "coordination.k8s.io" && parts[2] === "v1" && parts[3] === "namespaces" && parts[5] === "leases" && parts.length <= 7) {
      return this.resource(req, res, url, "leases", parts[4], parts[6], body);
    }
    return this.status(res, 404, "NotFound", `the server could not find the requested resource (${req.method} ${url.pathname})`);
  }

  private resource(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    resource: "nodes" | "leases",
    namespace: string | undefined,
    name: string | undefined,
    body: string | undefined,
  ): void {
    const map = resource === "nodes" ? this.nodes : this.leases;
    const key = (n: string) => (namespace ? `${namespace}/${n}` : n);
    const kindName = resource === "nodes" ? "nodes" : "leases.coordination.k8s.io";
    const watching = url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1";
    if (req.method === "GET" && name === undefined) {
      if (watching) return this.watch(res, url, resource, namespace);
      const items = [...map.entries()].filter(([k]) => !namespace || k.startsWith(`${namespace}/`)).map(([, v]) => v);
      const listKind = resource === "nodes" ? "NodeList" : "LeaseList";
      const apiVersion = resource === "nodes" ? "v1" : "coordination.k8s.io/v1";
      return this.json(res, 200, { kind: listKind, apiVersion, metadata: { resourceVersion: String(this.rv) }, items });
    }
    if (name === undefined) {
      if (req.method !== "POST") return this.status(res, 405, "MethodNotAllowed", `${req.method} is not allowed on a collection`);
      const object = parseJson(body);
      if (!object?.metadata?.name) return this.status(res, 422, "Invalid", `${kindName} "": metadata.name: Required value`);
      if (map.has(key(object.metadata.name))) {
        return this.status(res, 409, "AlreadyExists", `${kindName} "${object.metadata.name}" already exists`);
      }
      if (namespace) object.metadata.namespace = namespace;
      return this.json(res, 201, this.store(resource, key(object.metadata.name), object, undefined));
    }
    const current = map.get(key(name));
    if (!current) return this.status(res, 404, "NotFound", `${kindName} "${name}" not found`);
    if (req.method === "GET") return this.json(res, 200, current);
    if (req.method === "DELETE") {
      map.delete(key(name));
      this.emit(resource, "DELETED", { ...current, metadata: { ...current.metadata, resourceVersion: String(++this.rv) } });
      return this.json(res, 200, { kind: "Status", apiVersion: "v1", status: "Success", details: { name, kind: resource } });
    }
    let next: Obj;
    try {
      if (req.method === "PUT") {
        next = parseJson(body);
        if (next?.metadata?.name !== name) return this.status(res, 400, "BadRequest", `the name of the object (${next?.metadata?.name}) does not match the name on the URL (${name})`);
      } else if (req.method === "PATCH") {
        const type = (req.headers["content-type"] ?? "").split(";")[0];
        const patch = parseJson(body);
        if (type === "application/json-patch+json") next = applyJsonPatch(current, patch);
        else if (type === "application/merge-patch+json") next = applyMergePatch(current, patch);
        else if (type === "application/strategic-merge-patch+json") next = applyStrategicMergePatch(current, patch);
        else return this.status(res, 415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
      } else {
        return this.status(res, 405, "MethodNotAllowed", `${req.method} is not allowed`);
      }
    } catch (error) {
      if (error instanceof PatchError) return this.status(res, 422, "Invalid", error.message);
      if (error instanceof SyntaxError) return this.status(res, 400, "BadRequest", `invalid JSON body: ${error.message}`);
      throw error;
    }
    // Optimistic concurrency: a resourceVersion in the body must match the stored one.
    const wanted = next.metadata?.resourceVersion;
    if (wanted !== undefined && wanted !== "" && wanted !== current.metadata.resourceVersion) {
      return this.status(res, 409, "Conflict", `Operation cannot be fulfilled on ${kindName} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    if (resource === "nodes") {
      const invalid = validateNodeUpdate(current, next);
      if (invalid) return this.status(res, 422, "Invalid", `Node "${name}" is invalid: ${invalid}`);
    }
    return this.json(res, 200, this.store(resource, key(name), next, current));
  }

  private watch(res: ServerResponse, url: URL, resource: "nodes" | "leases", namespace: string | undefined): void {
    const from = Number(url.searchParams.get("resourceVersion") || this.rv);
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const stream: WatchStream = { resource, res, bookmarks: url.searchParams.get("allowWatchBookmarks") === "true", rv: from, ...(namespace ? { namespace } : {}) };
    if (from < this.compactedRv) {
      // What the real apiserver does for a too-old resourceVersion: 200, one ERROR event with a 410 Status, close.
      res.end(
        JSON.stringify({
          type: "ERROR",
          object: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: `too old resource version: ${from} (${this.compactedRv})`, reason: "Expired", code: 410 },
        }) + "\n",
      );
      return;
    }
    this.streams.add(stream);
    res.on("close", () => this.streams.delete(stream));
    for (const event of this.history) if (event.rv > from) this.send(stream, event);
    const timeout = Number(url.searchParams.get("timeoutSeconds") || 0);
    if (timeout > 0) {
      const timer = setTimeout(() => res.end(), timeout * 1000);
      res.on("close", () => clearTimeout(timer));
    }
  }

  private store(resource: "nodes" | "leases", key: string, object: Obj, previous: Obj | undefined): Obj {
    const rv = ++this.rv;
    const stored = structuredClone(object);
    stored.metadata = {
      ...stored.metadata,
      resourceVersion: String(rv),
      uid: previous?.metadata?.uid ?? `uid-${rv}`,
      creationTimestamp: previous?.metadata?.creationTimestamp ?? new Date().toISOString(),
    };
    if (resource === "leases") stored.apiVersion = "coordination.k8s.io/v1", stored.kind = "Lease";
    (resource === "nodes" ? this.nodes : this.leases).set(key, stored);
    this.emit(resource, previous ? "MODIFIED" : "ADDED", stored);
    return stored;
  }

  private emit(resource: "nodes" | "leases", type: Event["type"], object: Obj): void {
    const event: Event = { rv: Number(object.metadata.resourceVersion), type, resource, object };
    this.history.push(event);
    const limit = this.options.historyLimit ?? 1000;
    if (this.history.length > limit) {
      const dropped = this.history.splice(0, this.history.length - limit);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const stream of this.streams) this.send(stream, event);
  }

  private send(stream: WatchStream, event: Event): void {
    if (stream.resource !== event.resource) return;
    if (stream.namespace && event.object.metadata.namespace !== stream.namespace) return;
    this.write(stream, { type: event.type, object: event.object });
  }

  private write(stream: WatchStream, payload: Obj): void {
    stream.res.write(JSON.stringify(payload) + "\n");
  }

  private json(res: ServerResponse, code: number, body: Obj): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    if (res.headersSent) return void res.destroy();
    this.json(res, code, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code });
  }
}

/** The apiserver's Node update validation that matters to pod CIDR allocation (ValidateNodeUpdate). */
function validateNodeUpdate(current: Obj, next: Obj): string | undefined {
  const before: string[] = current.spec?.podCIDRs ?? [];
  const after: string[] = next.spec?.podCIDRs ?? [];
  if (before.length > 0 && JSON.stringify(before) !== JSON.stringify(after)) {
    return `spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid`;
  }
  if (after.length > 2) return `spec.podCIDRs: Too many: ${after.length}: must have at most 2 items`;
  if (after.length > 0 && next.spec?.podCIDR !== undefined && next.spec.podCIDR !== after[0]) {
    return `spec.podCIDR: Invalid value: "${next.spec.podCIDR}": must match the first entry of spec.podCIDRs`;
  }
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseJson(body: string | undefined): any {
  return JSON.parse(body ?? "null");
}
