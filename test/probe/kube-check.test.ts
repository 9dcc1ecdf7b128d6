import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProbePlan, DEFAULT_PROBE_OPTIONS } from "@flatnet/core";
import { runProbe } from "../../apps/agent/src/probe/engine.ts";
import { DEFAULT_KUBE_TARGET, KubeClient, kubeInventory, kubeProbeToken, kubeProxyTransport, kubeStateSource } from "../../apps/agent/src/probe/kube-source.ts";
import { type FakeKubeApi, startFakeKubeApi } from "./fake-kube-api.ts";
import { isRoot, ProbeTopology } from "./topology.ts";

// `flatnet check` against a cluster, exec-less: a fake API server (loopback, plain HTTP, bearer token) lists nodes and
// responder pods and implements pods/proxy by forwarding to the responders of a netns network (namespaces fn-tp-k*).

const PORT = 7471;
const TOKEN = "fn-tp-token";
const PROBE_TOKEN = "fn-tp-probe-token-0123456789";
const root = isRoot();
if (!root) console.log("kube check tests skipped: they need root to create network namespaces");

describe.skipIf(!root)("probes through the Kubernetes API server (pods/proxy)", () => {
  const topo = new ProbeTopology("k", 2, 2);
  let api: FakeKubeApi;
  let kubeconfig: string;

  beforeAll(async () => {
    topo.up();
    await topo.startResponders(PORT);
    api = await startFakeKubeApi(topo, { token: TOKEN, probeToken: PROBE_TOKEN, context: "fn-tp" });
    kubeconfig = api.kubeconfig;
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    topo.cleanup();
  });

  async function check() {
    const client = KubeClient.load({ kubeconfig });
    const inventory = await kubeInventory(client, DEFAULT_KUBE_TARGET);
    return runProbe({
      cluster: inventory.cluster,
      plan: buildProbePlan(inventory, { mode: "all-pods" }),
      options: { ...DEFAULT_PROBE_OPTIONS, podMtu: 1500, retries: 1 },
      transport: kubeProxyTransport(client, DEFAULT_KUBE_TARGET.namespace, await kubeProbeToken(client, DEFAULT_KUBE_TARGET.namespace)),
      nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
      states: kubeStateSource(inventory),
      retryBackoffMs: 0,
    });
  }

  it("lists responders through the API server and probes every pair through pods/proxy", async () => {
    const report = await check();
    expect(report.cluster).toEqual({ name: "fn-tp", source: "kubernetes" });
    expect(report.summary.line).toBe("0/12 pairs failed (0 NAT violations), 0 excluded");
    expect(report.results.every((r) => r.nat.verdict === "nat-free" && r.mtu?.tcpOk === true && r.mtu?.udpOk === true)).toBe(true);
    expect(report.results[0]!.pair.id).toBe("flatnet-system/pod-1-0>flatnet-system/pod-1-1/IPv4");
    expect(api.seen.filter((s) => s.startsWith("POST ")).sort()).toEqual(
      topo.pods.map((p) => `POST /api/v1/namespaces/flatnet-system/pods/${p.name}:7471/proxy/v1/dial`).sort(),
    );
    // The token from the Secret rides on every proxied dial (responders dial only for its holder).
    expect(new Set(api.presented)).toEqual(new Set([PROBE_TOKEN]));
  }, 60_000);

  it("a responder pod that is not Ready is excluded, and the proxy error of a gone pod is inconclusive", async () => {
    api.notReady.add("pod-2-1");
    await topo.stopProcess("pod-1-1"); // its pod stays "Ready" in the API: the proxy cannot reach it
    try {
      const report = await check();
      expect(report.summary.excluded).toBe(6);
      const inconclusive = report.results.filter((r) => r.verdict === "inconclusive").map((r) => r.pair.id).sort();
      expect(inconclusive).toEqual([
        "flatnet-system/pod-1-1>flatnet-system/pod-1-0/IPv4",
        "flatnet-system/pod-1-1>flatnet-system/pod-2-0/IPv4",
      ]);
      const failed = report.results.filter((r) => r.verdict === "failed").map((r) => r.pair.id).sort();
      expect(failed).toEqual(["flatnet-system/pod-1-0>flatnet-system/pod-1-1/IPv4", "flatnet-system/pod-2-0>flatnet-system/pod-1-1/IPv4"]);
      expect(report.results.find((r) => r.verdict === "inconclusive")!.error).toMatch(/pods\/proxy to pod-1-1 answered HTTP 503: error trying to reach service/);
    } finally {
      api.notReady.clear();
    }
  }, 60_000);

  it("a kubeconfig without the asked context is a clear error", () => {
    expect(() => KubeClient.load({ kubeconfig, context: "nope" })).toThrow('context "nope" is not in the kubeconfig; contexts: fn-tp');
  });
});
