import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeApiServer } from "./fake-apiserver.ts";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from "./patch.ts";

// The fake's own protocol, spoken over plain HTTP (the kube datastore tests speak it through client-node).

describe("patch semantics", () => {
  const node = {
    metadata: { name: "n1", annotations: { a: "1", b: "2" }, finalizers: ["x"] },
    spec: { podCIDRs: ["10.244.1.0/24"] },
    status: { conditions: [{ type: "Ready", status: "True" }, { type: "MemoryPressure", status: "False" }] },
  };
  it.each([
    ["merge: null deletes, objects merge", applyMergePatch, { metadata: { annotations: { a: null, c: "3" } } }, { ...node, metadata: { ...node.metadata, annotations: { b: "2", c: "3" } } }],
    ["merge: a list replaces", applyMergePatch, { metadata: { finalizers: ["y"] } }, { ...node, metadata: { ...node.metadata, finalizers: ["y"] } }],
    ["strategic: a primitive merge list unions", applyStrategicMergePatch, { metadata: { finalizers: ["y", "x"] } }, { ...node, metadata: { ...node.metadata, finalizers: ["x", "y"] } }],
    [
      "strategic: conditions merge by type",
      applyStrategicMergePatch,
      { status: { conditions: [{ type: "Ready", status: "False" }] } },
      { ...node, status: { conditions: [{ type: "Ready", status: "False" }, { type: "MemoryPressure", status: "False" }] } },
    ],
    [
      "strategic: $patch delete removes a list item",
      applyStrategicMergePatch,
      { status: { conditions: [{ type: "MemoryPressure", $patch: "delete" }] } },
      { ...node, status: { conditions: [{ type: "Ready", status: "True" }] } },
    ],
    ["json: add, replace, remove", (t: unknown, p: unknown) => applyJsonPatch(t, p), [
      { op: "add", path: "/metadata/annotations/c", value: "3" },
      { op: "replace", path: "/metadata/annotations/a", value: "9" },
      { op: "remove", path: "/metadata/annotations/b" },
    ], { ...node, metadata: { ...node.metadata, annotations: { a: "9", c: "3" } } }],
    ["json: ~1 escapes a slash", (t: unknown, p: unknown) => applyJsonPatch(t, p), [{ op: "add", path: "/metadata/annotations/flatnet.io~1vtep-mac", value: "m" }], {
      ...node,
      metadata: { ...node.metadata, annotations: { a: "1", b: "2", "flatnet.io/vtep-mac": "m" } },
    }],
  ])("%s", (_label, apply, patch, expected) => {
    expect(apply(node, patch)).toEqual(expected);
  });

  it.each([
    [[{ op: "test", path: "/metadata/name", value: "other" }], /"test" operation failed/],
    [[{ op: "replace", path: "/metadata/nope", value: 1 }], /does not exist/],
    [[{ op: "remove", path: "/spec/podCIDRs/5" }], /does not exist|out of range/],
    [[{ op: "frobnicate", path: "/x" }], /unknown json patch operation/],
    [{ op: "add" }, /must be an array/],
  ])("json patch %j fails as a PatchError", (patch, message) => {
    expect(() => applyJsonPatch(node, patch)).toThrow(PatchError);
    expect(() => applyJsonPatch(node, patch)).toThrow(message);
  });
});

describe("FakeApiServer over HTTP", () => {
  let fake: FakeApiServer;
  beforeEach(async () => {
    fake = new FakeApiServer({ historyLimit: 5 });
    await fake.start();
  });
  afterEach(async () => {
    await fake.stop();
  });
  const call = async (method: string, path: string, body?: unknown, contentType = "application/json") => {
    const response = await fetch(fake.url + path, {
      method,
      headers: { "content-type": contentType },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };

  it("lists with a resourceVersion and answers 404 as a Status", async () => {
    fake.putNode({ metadata: { name: "n1" } });
    const list = await call("GET", "/api/v1/nodes");
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ kind: "NodeList", metadata: { resourceVersion: expect.any(String) }, items: [{ metadata: { name: "n1" } }] });
    expect((await call("GET", "/api/v1/nodes/missing")).body).toMatchObject({ kind: "Status", code: 404, reason: "NotFound" });
  });

  it.each([
    ["a podCIDRs change", { spec: { podCIDRs: ["10.244.9.0/24"] } }, 422, "Invalid", /may not change podCIDR/],
    ["a stale resourceVersion", { metadata: { resourceVersion: "1" } }, 409, "Conflict", /the object has been modified/],
  ])("refuses %s", async (_label, patch, code, reason, message) => {
    fake.putNode({ metadata: { name: "n1" }, spec: { podCIDRs: ["10.244.1.0/24"] } });
    const response = await call("PATCH", "/api/v1/nodes/n1", patch, "application/merge-patch+json");
    expect(response.status).toBe(code);
    expect(response.body).toMatchObject({ kind: "Status", code, reason, message: expect.stringMatching(message) });
  });

  it("refuses an unknown patch type with 415", async () => {
    fake.putNode({ metadata: { name: "n1" } });
    expect((await call("PATCH", "/api/v1/nodes/n1", {}, "application/apply-patch+yaml")).status).toBe(415);
  });

  it("leases: create once (409 AlreadyExists), update only at the read resourceVersion (409 Conflict)", async () => {
    const path = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";
    const created = await call("POST", path, { metadata: { name: "l" }, spec: { holderIdentity: "a" } });
    expect(created.status).toBe(201);
    expect((await call("POST", path, { metadata: { name: "l" }, spec: {} })).body).toMatchObject({ code: 409, reason: "AlreadyExists" });
    const rv = created.body.metadata.resourceVersion;
    const first = await call("PUT", `${path}/l`, { metadata: { name: "l", resourceVersion: rv }, spec: { holderIdentity: "b" } });
    expect(first.status).toBe(200);
    const second = await call("PUT", `${path}/l`, { metadata: { name: "l", resourceVersion: rv }, spec: { holderIdentity: "c" } });
    expect(second.body).toMatchObject({ code: 409, reason: "Conflict" });
    expect(fake.getLease("ns", "l")!.spec.holderIdentity).toBe("b");
  });

  it("a watch from a resourceVersion older than the kept history gets one ERROR event with 410 and ends", async () => {
    fake.putNode({ metadata: { name: "n0" } });
    const old = fake.getNode("n0")!.metadata.resourceVersion;
    for (let i = 1; i <= 10; i++) fake.putNode({ metadata: { name: `n${i}` } });
    const response = await fetch(`${fake.url}/api/v1/nodes?watch=true&resourceVersion=${old}`);
    expect(response.status).toBe(200);
    const lines = (await response.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toEqual([{ type: "ERROR", object: expect.objectContaining({ kind: "Status", code: 410, reason: "Expired" }) }]);
  });

  it("a watch replays events after its resourceVersion, then streams, with bookmarks when asked", async () => {
    fake.putNode({ metadata: { name: "n1" } });
    const from = fake.getNode("n1")!.metadata.resourceVersion;
    fake.putNode({ metadata: { name: "n2" } });
    const controller = new AbortController();
    const response = await fetch(`${fake.url}/api/v1/nodes?watch=true&allowWatchBookmarks=true&resourceVersion=${from}`, { signal: controller.signal });
    const reader = response.body!.getReader();
    const events: any[] = [];
    let buffered = "";
    const readUntil = async (count: number) => {
      while (events.length < count) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += new TextDecoder().decode(value);
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        events.push(...lines.filter(Boolean).map((l) => JSON.parse(l)));
      }
    };
    await readUntil(1);
    fake.deleteNode("n1");
    fake.bookmark();
    await readUntil(3);
    controller.abort();
    expect(events.map((e) => [e.type, e.object.metadata.name ?? null])).toEqual([["ADDED", "n2"], ["DELETED", "n1"], ["BOOKMARK", null]]);
  });
});

describe("FakeApiServer workloads (namespaces, pods, secrets, configmaps, DaemonSets) over HTTP", () => {
  let fake: FakeApiServer;
  beforeEach(async () => {
    fake = new FakeApiServer();
    await fake.start();
  });
  afterEach(async () => {
    await fake.stop();
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(fake.url + path, { method, headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const ds = { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "probe" }, spec: { template: { metadata: { labels: { app: "probe" } } } } };

  it("a namespaced object needs its namespace (404 naming it), then gets generation 1; a spec change bumps it, a status change does not", async () => {
    expect((await call("POST", "/apis/apps/v1/namespaces/ns1/daemonsets", ds)).body).toMatchObject({ code: 404, message: 'namespaces "ns1" not found' });
    expect((await call("POST", "/api/v1/namespaces", { metadata: { name: "ns1" } })).status).toBe(201);
    const created = await call("POST", "/apis/apps/v1/namespaces/ns1/daemonsets", ds);
    expect(created).toMatchObject({ status: 201, body: { kind: "DaemonSet", apiVersion: "apps/v1", metadata: { namespace: "ns1", generation: 1 } } });
    expect((await call("POST", "/apis/apps/v1/namespaces/ns1/daemonsets", ds)).body).toMatchObject({ code: 409, reason: "AlreadyExists", message: 'daemonsets.apps "probe" already exists' });
    const stored = fake.workloads.get("daemonsets", "ns1", "probe")!;
    expect(fake.workloads.put("daemonsets", { ...stored, status: { numberReady: 1 } }).metadata.generation).toBe(1);
    expect(fake.workloads.put("daemonsets", { ...stored, spec: { template: {} } }).metadata.generation).toBe(2);
  });

  it("lists pods by equality label selector, refuses other selector syntax, and deleting a namespace deletes its contents", async () => {
    fake.workloads.put("namespaces", { metadata: { name: "ns1" } });
    fake.workloads.put("pods", { metadata: { name: "a", namespace: "ns1", labels: { app: "probe", tier: "x" } } });
    fake.workloads.put("pods", { metadata: { name: "b", namespace: "ns1", labels: { app: "other" } } });
    const names = async (selector: string) => (await call("GET", `/api/v1/namespaces/ns1/pods?labelSelector=${encodeURIComponent(selector)}`)).body.items.map((p: { metadata: { name: string } }) => p.metadata.name);
    expect(await names("app=probe")).toEqual(["a"]);
    expect(await names("app==probe,tier=x")).toEqual(["a"]);
    expect(await names("")).toEqual(["a", "b"]);
    expect((await call("GET", `/api/v1/namespaces/ns1/pods?labelSelector=${encodeURIComponent("app!=probe")}`)).body).toMatchObject({ code: 400 });
    expect((await call("DELETE", "/api/v1/namespaces/ns1?propagationPolicy=Sideways")).body).toMatchObject({ code: 400 });
    expect((await call("DELETE", "/api/v1/namespaces/ns1?propagationPolicy=Background")).status).toBe(200);
    expect(fake.workloads.list("pods")).toEqual([]);
    expect((await call("GET", "/api/v1/namespaces/ns1")).status).toBe(404);
  });

  it("secrets as the apiserver stores them: stringData merged into base64 data, type Opaque, bad base64 refused; configmaps hold strings; both go with their namespace", async () => {
    expect((await call("POST", "/api/v1/namespaces/ns1/secrets", { metadata: { name: "t" } })).body).toMatchObject({ code: 404, message: 'namespaces "ns1" not found' });
    fake.workloads.put("namespaces", { metadata: { name: "ns1" } });
    const made = await call("POST", "/api/v1/namespaces/ns1/secrets", { apiVersion: "v1", kind: "Secret", metadata: { name: "t" }, data: { a: "YQ==" }, stringData: { token: "abc" } });
    expect(made).toMatchObject({ status: 201, body: { kind: "Secret", type: "Opaque", data: { a: "YQ==", token: "YWJj" }, metadata: { namespace: "ns1" } } });
    expect(made.body.stringData).toBeUndefined();
    expect(made.body.metadata.generation).toBeUndefined();
    expect((await call("GET", "/api/v1/namespaces/ns1/secrets/t")).body.data.token).toBe("YWJj");
    expect((await call("POST", "/api/v1/namespaces/ns1/secrets", { metadata: { name: "u" }, data: { token: "not base64!" } })).body).toMatchObject({ code: 422, message: 'secrets "u" is invalid: data[token]: Invalid value: illegal base64 data' });
    expect((await call("POST", "/api/v1/namespaces/ns1/configmaps", { kind: "Secret", metadata: { name: "c" } })).body).toMatchObject({ code: 400 });
    expect((await call("POST", "/api/v1/namespaces/ns1/configmaps", { metadata: { name: "c" }, data: { n: 1 } })).body).toMatchObject({ code: 422 });
    expect((await call("POST", "/api/v1/namespaces/ns1/configmaps", { metadata: { name: "c" }, data: { "net-conf.json": "{}" } })).status).toBe(201);
    expect((await call("GET", "/api/v1/namespaces/ns1/configmaps/missing")).body).toMatchObject({ code: 404, message: 'configmaps "missing" not found' });
    expect((await call("DELETE", "/api/v1/namespaces/ns1/secrets/t")).status).toBe(200);
    expect((await call("GET", "/api/v1/namespaces/ns1/secrets/t")).status).toBe(404);
    expect((await call("DELETE", "/api/v1/namespaces/ns1?propagationPolicy=Background")).status).toBe(200);
    expect(fake.workloads.list("configmaps")).toEqual([]);
  });

  it("pods/proxy goes to the test's proxy with the pod, port and path; 404 for a pod that does not exist", async () => {
    fake.workloads.put("namespaces", { metadata: { name: "ns1" } });
    fake.workloads.put("pods", { metadata: { name: "a", namespace: "ns1" } });
    fake.workloads.proxy = (target, _req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(target));
    };
    expect((await call("POST", "/api/v1/namespaces/ns1/pods/a:7471/proxy/v1/dial?x=1", {})).body).toEqual({ namespace: "ns1", pod: "a", port: 7471, path: "/v1/dial?x=1" });
    expect((await call("GET", "/api/v1/namespaces/ns1/pods/zz:7471/proxy/healthz")).body).toMatchObject({ code: 404, message: 'pods "zz" not found' });
  });
});
