import type { IncomingMessage, ServerResponse } from "node:http";

// The fake kube-apiserver's workload resources, for `flatnet check --deploy`: core/v1 Namespaces, Pods, Secrets and
// ConfigMaps (Secret data base64-checked, stringData merged into data, type Opaque by default; ConfigMap data strings), apps/v1 DaemonSets, equality label selectors, pods/proxy, DaemonSet metadata.generation. Controllers (the DaemonSet
// controller, kubelet, the garbage collector) are the test's part: it listens to events and acts as they would.

type Obj = Record<string, any>;
export type WorkloadResource = "namespaces" | "pods" | "secrets" | "configmaps" | "daemonsets";
const CORE_NAMESPACED = ["pods", "secrets", "configmaps"] as const;
export interface WorkloadEvent { type: "ADDED" | "MODIFIED" | "DELETED"; resource: WorkloadResource; object: Obj }
/** `.../pods/NAME[:PORT]/proxy/PATH`: where the apiserver would forward, and the request to forward. */
export interface ProxyTarget { namespace: string; pod: string; port: number | undefined; path: string }

export interface WorkloadHost {
  nextRv(): number;
  json(res: ServerResponse, code: number, body: Obj): void;
  status(res: ServerResponse, code: number, reason: string, message: string): void;
  readBody(req: IncomingMessage): Promise<string>;
}

const KINDS: Record<WorkloadResource, { kind: string; apiVersion: string; qualified: string }> = {
  namespaces: { kind: "Namespace", apiVersion: "v1", qualified: "namespaces" },
  pods: { kind: "Pod", apiVersion: "v1", qualified: "pods" },
  secrets: { kind: "Secret", apiVersion: "v1", qualified: "secrets" },
  configmaps: { kind: "ConfigMap", apiVersion: "v1", qualified: "configmaps" },
  daemonsets: { kind: "DaemonSet", apiVersion: "apps/v1", qualified: "daemonsets.apps" },
};

export class FakeWorkloads {
  private readonly objects: Record<WorkloadResource, Map<string, Obj>> = { namespaces: new Map(), pods: new Map(), secrets: new Map(), configmaps: new Map(), daemonsets: new Map() };
  private readonly listeners: ((event: WorkloadEvent) => void)[] = [];
  /** Answers pods/proxy requests (the kubelet and the pod behind the apiserver); 503 when unset. */
  proxy: ((target: ProxyTarget, req: IncomingMessage, res: ServerResponse) => void) | undefined;

  constructor(private readonly host: WorkloadHost) {}

  // ---- test controls ----

  /** Called after each change, asynchronously (a controller sees it after the client got its answer). */
  onEvent(listener: (event: WorkloadEvent) => void): void {
    this.listeners.push(listener);
  }

  get(resource: WorkloadResource, namespace: string | undefined, name: string): Obj | undefined {
    return this.objects[resource].get(key(namespace, name));
  }

  list(resource: WorkloadResource, namespace?: string): Obj[] {
    return [...this.objects[resource].values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace);
  }

  /** Creates or replaces an object as a controller would (a pod the DaemonSet controller made, a status kubelet set). */
  put(resource: WorkloadResource, object: Obj): Obj {
    const namespace = resource === "namespaces" ? undefined : object.metadata.namespace;
    return this.store(resource, key(namespace, object.metadata.name), object, this.get(resource, namespace, object.metadata.name));
  }

  remove(resource: WorkloadResource, namespace: string | undefined, name: string): void {
    const current = this.get(resource, namespace, name);
    if (current === undefined) return;
    this.objects[resource].delete(key(namespace, name));
    this.emit({ type: "DELETED", resource, object: { ...current, metadata: { ...current.metadata, resourceVersion: String(this.host.nextRv()) } } });
    // Deleting a namespace deletes what is in it (the namespace controller; the real one goes through Terminating).
    if (resource === "namespaces") for (const r of [...CORE_NAMESPACED, "daemonsets"] as const) for (const o of this.list(r, name)) this.remove(r, name, o.metadata.name);
  }

  // ---- HTTP ----

  /** Whether a path is one of these resources (checked before the server reads a body: pods/proxy streams it). */
  static handles(parts: string[]): boolean {
    if (parts[0] === "api" && parts[1] === "v1" && parts[2] === "namespaces") return parts.length <= 4 || (CORE_NAMESPACED as readonly string[]).includes(parts[4]!);
    return parts[0] === "apis" && parts[1] === "apps" && parts[2] === "v1" && parts[3] === "namespaces" && parts[5] === "daemonsets";
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, parts: string[]): Promise<void> {
    const { host } = this;
    let resource: WorkloadResource;
    let namespace: string | undefined;
    let name: string | undefined;
    if (parts[0] === "api" && parts.length <= 4) [resource, name] = ["namespaces", parts[3]];
    else if (parts[0] === "api") [resource, namespace, name] = [parts[4] as WorkloadResource, parts[3], parts[5]];
    else [resource, namespace, name] = ["daemonsets", parts[4], parts[6]];
    const extra = parts.slice(resource === "namespaces" ? 4 : resource === "daemonsets" ? 7 : 6);
    const { qualified, kind, apiVersion } = KINDS[resource];
    if (resource === "pods" && name !== undefined && extra[0] === "proxy") {
      const [pod, port] = name.split(":") as [string, string | undefined];
      if (this.get("pods", namespace, pod) === undefined) return host.status(res, 404, "NotFound", `pods "${pod}" not found`);
      if (this.proxy === undefined) return host.status(res, 503, "ServiceUnavailable", `error trying to reach service: no proxy in this fake`);
      return this.proxy({ namespace: namespace!, pod, port: port === undefined ? undefined : Number(port), path: `/${extra.slice(1).join("/")}${url.search}` }, req, res);
    }
    if (extra.length > 0) return host.status(res, 404, "NotFound", `the server could not find the requested resource (${req.method} ${url.pathname})`);
    // Namespaced objects need their namespace (the NamespaceLifecycle admission plugin).
    if (namespace !== undefined && req.method === "POST" && !this.objects.namespaces.has(namespace)) {
      return host.status(res, 404, "NotFound", `namespaces "${namespace}" not found`);
    }
    if (name === undefined && req.method === "GET") {
      const selector = parseLabelSelector(url.searchParams.get("labelSelector") ?? "");
      if (typeof selector === "string") return host.status(res, 400, "BadRequest", selector);
      const items = this.list(resource, namespace).filter((o) => selector.every(([k, v]) => o.metadata.labels?.[k] === v));
      return host.json(res, 200, { kind: `${kind}List`, apiVersion, metadata: { resourceVersion: String(this.host.nextRv()) }, items });
    }
    if (name === undefined) {
      if (req.method !== "POST") return host.status(res, 405, "MethodNotAllowed", `${req.method} is not allowed on a collection`);
      let object: Obj;
      try {
        object = JSON.parse(await host.readBody(req)) as Obj;
      } catch (error) {
        return host.status(res, 400, "BadRequest", `invalid JSON body: ${(error as Error).message}`);
      }
      if (!object?.metadata?.name) return host.status(res, 422, "Invalid", `${qualified} "": metadata.name: Required value`);
      if (object.kind !== undefined && object.kind !== kind) return host.status(res, 400, "BadRequest", `the API version in the data (${object.apiVersion}) / kind (${object.kind}) does not match the URL (${kind})`);
      if (namespace !== undefined) {
        if (object.metadata.namespace !== undefined && object.metadata.namespace !== namespace) {
          return host.status(res, 400, "BadRequest", `the namespace of the provided object does not match the namespace sent on the request`);
        }
        object.metadata.namespace = namespace;
      }
      const invalid = resource === "secrets" ? normaliseSecret(object) : resource === "configmaps" ? checkConfigMap(object) : undefined;
      if (invalid !== undefined) return host.status(res, 422, "Invalid", `${qualified} "${object.metadata.name}" is invalid: ${invalid}`);
      if (this.get(resource, namespace, object.metadata.name) !== undefined) return host.status(res, 409, "AlreadyExists", `${qualified} "${object.metadata.name}" already exists`);
      return host.json(res, 201, this.store(resource, key(namespace, object.metadata.name), object, undefined));
    }
    const current = this.get(resource, namespace, name);
    if (current === undefined) return host.status(res, 404, "NotFound", `${qualified} "${name}" not found`);
    if (req.method === "GET") return host.json(res, 200, current);
    if (req.method === "DELETE") {
      const policy = url.searchParams.get("propagationPolicy");
      if (policy !== null && !["Orphan", "Background", "Foreground"].includes(policy)) {
        return host.status(res, 400, "BadRequest", `propagationPolicy "${policy}" is not one of Orphan, Background, Foreground`);
      }
      this.remove(resource, namespace, name);
      return host.json(res, 200, { kind: "Status", apiVersion: "v1", status: "Success", details: { name, kind: resource } });
    }
    return host.status(res, 405, "MethodNotAllowed", `${req.method} is not allowed in this fake on ${qualified}`);
  }

  private store(resource: WorkloadResource, k: string, object: Obj, previous: Obj | undefined): Obj {
    const { kind, apiVersion } = KINDS[resource];
    const stored = structuredClone(object);
    const rv = this.host.nextRv();
    // metadata.generation counts spec changes (what status.observedGeneration is compared with).
    const specChanged = previous === undefined || JSON.stringify(previous.spec) !== JSON.stringify(stored.spec);
    stored.metadata = {
      ...stored.metadata,
      resourceVersion: String(rv),
      uid: previous?.metadata?.uid ?? `uid-${rv}`,
      creationTimestamp: previous?.metadata?.creationTimestamp ?? new Date().toISOString(),
      ...(resource !== "pods" && resource !== "daemonsets" ? {} : { generation: (previous?.metadata?.generation ?? 0) + (specChanged ? 1 : 0) }),
    };
    Object.assign(stored, { apiVersion, kind });
    this.objects[resource].set(k, stored);
    this.emit({ type: previous === undefined ? "ADDED" : "MODIFIED", resource, object: stored });
    return stored;
  }

  private emit(event: WorkloadEvent): void {
    for (const listener of this.listeners) setImmediate(() => listener(event));
  }
}

/** What the apiserver does to a Secret on write: stringData merged into data (base64), data checked, type defaulted. */
function normaliseSecret(secret: Obj): string | undefined {
  const data: Record<string, unknown> = { ...secret.data };
  for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = typeof v === "string" ? Buffer.from(v).toString("base64") : v;
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v)) return `data[${k}]: Invalid value: illegal base64 data`;
  }
  delete secret.stringData;
  secret.data = data;
  secret.type ??= "Opaque";
  return undefined;
}

function checkConfigMap(configMap: Obj): string | undefined {
  for (const [k, v] of Object.entries(configMap.data ?? {})) if (typeof v !== "string") return `data[${k}]: Invalid value: must be a string`;
  return undefined;
}

const key = (namespace: string | undefined, name: string): string => (namespace === undefined ? name : `${namespace}/${name}`);

/** `a=b,c==d`: equality requirements; anything else (!=, in, notin, exists) is an error this fake does not serve. */
function parseLabelSelector(text: string): [string, string][] | string {
  if (text.trim() === "") return [];
  const requirements: [string, string][] = [];
  for (const part of text.split(",")) {
    const match = /^\s*([A-Za-z0-9./_-]+)\s*==?\s*([A-Za-z0-9._-]*)\s*$/.exec(part);
    if (match === null) return `unable to parse requirement "${part}": this fake serves equality selectors (k=v) only`;
    requirements.push([match[1]!, match[2]!]);
  }
  return requirements;
}
