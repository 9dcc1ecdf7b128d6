import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";
import { KubeDatastore, loadKubeConfig, type KubeDatastoreOptions } from "../../apps/agent/src/datastore/kube-datastore.ts";
import { LeaseLeader } from "../../apps/agent/src/datastore/kube-lease-leader.ts";
import { waitUntil } from "../../apps/agent/test-support/wait-until.ts";

const network = { clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"] };

function kubeletNode(name: string, ip: string, podCIDRs?: string[]) {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name } },
    spec: podCIDRs ? { podCIDR: podCIDRs[0], podCIDRs } : {},
    status: {
      addresses: [{ type: "InternalIP", address: ip }, { type: "Hostname", address: name }],
      conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: new Date().toISOString(), reason: "KubeletReady" }],
    },
  };
}

const reg = (name: string, ip: string) => ({ name, underlayIps: [ip], vtepMac: "0e:11:22:33:44:55", underlayMtu: 1500 });

describe("KubeDatastore through @kubernetes/client-node against the fake apiserver", { timeout: 30_000 }, () => {
  let fake: FakeApiServer;
  let kubeConfig: KubeConfig;
  const opened: KubeDatastore[] = [];
  const open = (overrides: Partial<KubeDatastoreOptions> = {}) => {
    const store = new KubeDatastore({ kubeConfig, networkConfig: network, ...overrides });
    opened.push(store);
    return store;
  };
  const lists = () => fake.requests.filter((r) => r.startsWith("GET /api/v1/nodes") && !r.includes("watch=")).length;

  beforeEach(async () => {
    fake = new FakeApiServer();
    await fake.start();
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(fake.kubeconfig());
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await fake.stop();
  });

  it("publishes flatnet.io/ annotations and builds the snapshot from spec.podCIDRs set by kube-controller-manager", async () => {
    fake.putNode(kubeletNode("n1", "172.31.0.11", ["10.244.1.0/24", "fd00:10:244:1::/64"]));
    fake.putNode(kubeletNode("n2", "172.31.0.12", ["10.244.2.0/24", "fd00:10:244:2::/64"]));
    fake.putNode(kubeletNode("no-cidr", "172.31.0.13"));
    const store = open();
    const self = await store.register(reg("n1", "172.31.0.11"));
    expect(self).toEqual({ name: "n1", underlayIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"], vtepMac: "0e:11:22:33:44:55", ready: true });
    expect(fake.getNode("n1")!.metadata.annotations).toEqual({
      "flatnet.io/underlay-ips": "172.31.0.11",
      "flatnet.io/vtep-mac": "0e:11:22:33:44:55",
      "flatnet.io/underlay-mtu": "1500",
      "flatnet.io/backend": "vxlan",
    });
    expect(fake.requests).toContainEqual(expect.stringMatching(/^GET \/api\/v1\/nodes\?.*allowWatchBookmarks=true/));
    await waitUntil("the annotation to reach the informer", async () => (await store.snapshot()).nodes[0]?.vtepMac);
    expect(await store.snapshot()).toEqual({
      clusterCidrs: network.clusterCidrs,
      nodes: [
        { name: "n1", underlayIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"], vtepMac: "0e:11:22:33:44:55", ready: true },
        // a peer without flatnet's annotations falls back to its InternalIP; a node without a pod CIDR is left out
        { name: "n2", underlayIps: ["172.31.0.12"], podCidrs: ["10.244.2.0/24", "fd00:10:244:2::/64"], ready: true },
      ],
    });
  });

  it("patches only its own Node (issue 14.9): a peer's annotations removed or forged are never re-published or cleaned", async () => {
    fake.putNode(kubeletNode("n1", "172.31.0.11", ["10.244.1.0/24"]));
    fake.putNode(kubeletNode("n2", "172.31.0.12", ["10.244.2.0/24"]));
    const store = open();
    await store.register(reg("n1", "172.31.0.11"));
    const peer = new KubeDatastore({ kubeConfig, networkConfig: network });
    opened.push(peer);
    await peer.register(reg("n2", "172.31.0.12"));
    // Someone strips n1's annotations and forges n2's: n1's agent repairs its own and leaves n2 alone.
    const n1 = fake.getNode("n1")!;
    fake.putNode({ ...n1, metadata: { ...n1.metadata, annotations: {} } });
    const n2 = fake.getNode("n2")!;
    fake.putNode({ ...n2, metadata: { ...n2.metadata, annotations: { ...n2.metadata.annotations, "flatnet.io/underlay-ips": "8.8.8.8,1.1.1.1" } } });
    fake.requests.length = 0;
    await waitUntil("the stripped annotations to reach the informer", async () => ((await store.snapshot()).nodes.find((n) => n.name === "n1")?.vtepMac === undefined ? true : undefined));
    await store.heartbeat("n1");
    await store.snapshot();
    await expect(store.heartbeat("n2")).rejects.toMatchObject({ code: "ERR_NOT_FOUND" });
    await expect(store.remove("n2")).rejects.toMatchObject({ code: "ERR_NOT_FOUND" });
    await store.remove("n1");
    const writes = fake.requests.filter((r) => !r.startsWith("GET "));
    expect(writes).toEqual(["PATCH /api/v1/nodes/n1", "PATCH /api/v1/nodes/n1"]);
    expect(fake.getNode("n2")!.metadata.annotations["flatnet.io/underlay-ips"]).toBe("8.8.8.8,1.1.1.1");
  });

  it("ignores kubelet status heartbeats but signals on changes that matter", async () => {
    fake.putNode(kubeletNode("n1", "172.31.0.11", ["10.244.1.0/24"]));
    const store = open();
    await store.start();
    let signals = 0;
    store.watch(() => signals++);
    const heartbeat = structuredClone(fake.getNode("n1")!);
    heartbeat.status.conditions[0].lastHeartbeatTime = new Date(Date.now() + 10_000).toISOString();
    fake.putNode(heartbeat);
    const notReady = structuredClone(fake.getNode("n1")!);
    notReady.status.conditions[0].status = "False";
    fake.putNode(notReady);
    await waitUntil("the Ready change", async () => (await store.snapshot()).nodes[0]?.ready === false);
    expect(signals).toBe(1);
  });

  it("re-lists after 410 Gone and sees what changed while it was disconnected", async () => {
    fake.putNode(kubeletNode("n1", "172.31.0.11", ["10.244.1.0/24"]));
    const store = open();
    await store.start();
    const listsBefore = lists();
    fake.dropWatches();
    fake.putNode(kubeletNode("n2", "172.31.0.12", ["10.244.2.0/24"]));
    fake.deleteNode("n1");
    fake.compact(); // the informer's resourceVersion is now too old
    await waitUntil("a re-list that shows n2 only", async () => (await store.snapshot()).nodes.map((n) => n.name).join() === "n2");
    expect(lists()).toBeGreaterThan(listsBefore);
  });

  it("resumes a dropped watch from its resourceVersion (a bookmark keeps an idle watch current) without re-listing", async () => {
    fake.putNode(kubeletNode("n1", "172.31.0.11", ["10.244.1.0/24"]));
    const store = open();
    await store.start();
    await waitUntil("the watch to be open", () => fake.openWatches() === 1);
    fake.bookmark();
    fake.putNode(kubeletNode("n2", "172.31.0.12", ["10.244.2.0/24"]));
    await waitUntil("n2 via the watch", async () => (await store.snapshot()).nodes.length === 2);
    const listsBefore = lists();
    fake.dropWatches();
    fake.putNode(kubeletNode("n3", "172.31.0.13", ["10.244.3.0/24"]));
    await waitUntil("n3 after the resumed watch", async () => (await store.snapshot()).nodes.length === 3);
    expect(lists()).toBe(listsBefore);
  });

  it("restarts the watch with backoff while the apiserver is down and reconverges when it returns", async () => {
    fake.putNode(kubeletNode("n1", "172.31.0.11", ["10.244.1.0/24"]));
    const events: string[] = [];
    const store = open({ onEvent: (e) => events.push(e.kind) });
    await store.start();
    fake.setUnavailable(true);
    await waitUntil("two failed restarts", () => events.filter((e) => e === "watch-restart").length >= 2);
    // Cached state is kept while the apiserver is away: the agent keeps its routes.
    expect((await store.snapshot()).nodes.map((n) => n.name)).toEqual(["n1"]);
    fake.putNode(kubeletNode("n2", "172.31.0.12", ["10.244.2.0/24"]));
    fake.setUnavailable(false);
    await waitUntil("n2 after the apiserver returned", async () => (await store.snapshot()).nodes.length === 2);
    expect(events).toContain("watch-error");
  });

  it.each([
    ["a Node that does not exist", undefined, "ERR_NOT_FOUND", /does not exist/],
    ["no pod CIDR from kube-controller-manager", kubeletNode("n1", "172.31.0.11"), "ERR_NO_POD_CIDR", /--allocate-node-cidrs/],
  ])("register fails clearly for %s", async (_label, node, code, message) => {
    if (node) fake.putNode(node);
    const store = open({ podCidrTimeoutMs: 300 });
    await expect(store.register(reg("n1", "172.31.0.11"))).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  });

  it("allocates pod CIDRs itself under one Lease leader when kube-controller-manager does not, and fails over", async () => {
    for (let i = 1; i <= 3; i++) fake.putNode(kubeletNode(`n${i}`, `172.31.0.1${i}`));
    const agents = [1, 2, 3].map(() => open({ podCidrAllocator: "flatnet", leaseDurationSeconds: 1, leaseNamespace: "flatnet" }));
    const selves = await Promise.all(agents.map((a, i) => a.register(reg(`n${i + 1}`, `172.31.0.1${i + 1}`))));
    const cidrs = selves.flatMap((s) => s.podCidrs);
    expect(new Set(cidrs).size).toBe(6);
    expect(selves.map((s) => s.podCidrs.length)).toEqual([2, 2, 2]);
    expect(agents.filter((a) => a.isLeader)).toHaveLength(1);
    const leaderIndex = agents.findIndex((a) => a.isLeader);
    expect(fake.getLease("flatnet", "flatnet-ipam")!.spec.holderIdentity).toBe(`n${leaderIndex + 1}`);
    // The leader goes away (releases the Lease); another agent takes over and serves a new node.
    await agents[leaderIndex]!.close();
    fake.putNode(kubeletNode("n4", "172.31.0.14"));
    const n4 = await waitUntil("n4 to get pod CIDRs from the new leader", () => fake.getNode("n4")!.spec.podCIDRs);
    expect(cidrs).not.toContain(n4[0]);
    expect(agents.filter((a, i) => i !== leaderIndex && a.isLeader)).toHaveLength(1);
  });
});

describe("LeaseLeader against the fake apiserver", () => {
  it("grants one holder, takes over only after the lease went unrenewed for its duration as seen locally", async () => {
    const fake = new FakeApiServer();
    await fake.start();
    try {
      const config = new KubeConfig();
      config.loadFromString(fake.kubeconfig());
      const api = config.makeApiClient(CoordinationV1Api);
      let clock = 1_000_000;
      const now = () => clock;
      const a = new LeaseLeader({ api, namespace: "kube-system", name: "l", identity: "a", leaseDurationSeconds: 10, now });
      const b = new LeaseLeader({ api, namespace: "kube-system", name: "l", identity: "b", leaseDurationSeconds: 10, now });
      expect([await a.tryAcquireOrRenew(), await b.tryAcquireOrRenew()]).toEqual([true, false]);
      clock += 9_000;
      expect([await a.tryAcquireOrRenew(), await b.tryAcquireOrRenew()]).toEqual([true, false]);
      clock += 9_000; // b saw a renewal 9 s ago: still not expired
      expect(await b.tryAcquireOrRenew()).toBe(false);
      clock += 10_000; // no renewal observed for 10 s
      expect(await b.tryAcquireOrRenew()).toBe(true);
      expect(fake.getLease("kube-system", "l")!.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
      expect(await a.tryAcquireOrRenew()).toBe(false);
    } finally {
      await fake.stop();
    }
  });
});

describe("loadKubeConfig", () => {
  it("uses the in-cluster service account when KUBERNETES_SERVICE_HOST is set, and a kubeconfig file when given", async () => {
    const root = await mkdtemp(join(tmpdir(), "fnk-sa-"));
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    try {
      const sa = join(root, "var/run/secrets/kubernetes.io/serviceaccount");
      await import("node:fs/promises").then((fs) => fs.mkdir(sa, { recursive: true }));
      await writeFile(join(sa, "token"), "sa-token");
      await writeFile(join(sa, "ca.crt"), "");
      await writeFile(join(sa, "namespace"), "kube-system");
      process.env.KUBERNETES_SERVICE_HOST = "10.96.0.1";
      process.env.KUBERNETES_SERVICE_PORT = "443";
      const inCluster = loadKubeConfig({ inClusterPathPrefix: root });
      expect(inCluster.getCurrentCluster()?.server).toBe("https://10.96.0.1:443");
      const file = join(root, "kubeconfig");
      await writeFile(file, JSON.stringify({ apiVersion: "v1", kind: "Config", clusters: [{ name: "c", cluster: { server: "http://127.0.0.1:1" } }], users: [{ name: "u", user: { token: "t" } }], contexts: [{ name: "x", context: { cluster: "c", user: "u" } }], "current-context": "x" }));
      expect(loadKubeConfig({ path: file }).getCurrentCluster()?.server).toBe("http://127.0.0.1:1");
    } finally {
      if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      else process.env.KUBERNETES_SERVICE_HOST = saved.host;
      if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
      else process.env.KUBERNETES_SERVICE_PORT = saved.port;
      await rm(root, { recursive: true, force: true });
    }
  });
});
