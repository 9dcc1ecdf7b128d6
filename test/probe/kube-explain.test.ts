import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProbePlan, DEFAULT_PROBE_OPTIONS } from "@flatnet/core";
import { createApiServer, type ApiServer } from "../../apps/agent/src/api/server.ts";
import { evidenceSocketPath, probeRoutes } from "../../apps/agent/src/api/routes-probe.ts";
import { runProbe } from "../../apps/agent/src/probe/engine.ts";
import { DEFAULT_KUBE_TARGET, KubeClient, kubeInventory, kubeProbeToken, kubeProxyTransport, kubeStateSource } from "../../apps/agent/src/probe/kube-source.ts";
import { type FakeKubeApi, startFakeKubeApi } from "./fake-kube-api.ts";
import { inNetns, isRoot, ProbeTopology } from "./topology.ts";

// Issue 10.4: on a cluster, failed pairs are explained from each node's agent as on the lab. The fake API server's
// pods/proxy reaches the responders (namespaces fn-tw-e*), each started with --agent-socket on its node's evidence
// socket; each node's evidence API (the agent's /v1/evidence route on <api>-evidence.sock) reads that node's netns.

const PORT = 7471;
const TOKEN = "fn-tw-api-token";
const PROBE_TOKEN = "fn-tw-probe-token-0123456789";
const root = isRoot();
if (!root) console.log("kube explain tests skipped: they need root to create network namespaces");

describe.skipIf(!root)("flatnet check --kubeconfig explains a failed pair from the node agents' evidence", () => {
  const topo = new ProbeTopology("e", 2, 1, "fn-tw-");
  const agentSocket = (node: string) => evidenceSocketPath(join(topo.dir, `${node}-agent.sock`));
  const agents: ApiServer[] = [];
  let api: FakeKubeApi;

  beforeAll(async () => {
    topo.up();
    for (const node of topo.nodes) {
      const self = { name: node.name, netns: node.netns, underlayDevice: "eth0", socketPath: join(topo.dir, `${node.name}-agent.sock`) };
      const server = createApiServer({ socketPath: agentSocket(node.name), routes: probeRoutes(() => self).filter((r) => r.path === "/v1/evidence"), socketMode: 0o666 });
      await server.listen();
      agents.push(server);
    }
    await topo.startResponders(PORT, PROBE_TOKEN, (pod) => ["--agent-socket", agentSocket(pod.node)]);
    api = await startFakeKubeApi(topo, { token: TOKEN, probeToken: PROBE_TOKEN, context: "fn-tw" });
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    for (const agent of agents) await agent.close();
    topo.cleanup();
  });

  async function check(withEvidence: boolean) {
    const client = KubeClient.load({ kubeconfig: api.kubeconfig });
    const inventory = await kubeInventory(client, DEFAULT_KUBE_TARGET);
    const token = await kubeProbeToken(client, DEFAULT_KUBE_TARGET.namespace);
    return runProbe({
      cluster: inventory.cluster,
      plan: buildProbePlan(inventory, { mode: "all-pods" }),
      options: { ...DEFAULT_PROBE_OPTIONS, podMtu: 1500, retries: 0, timeoutMs: 300 },
      transport: kubeProxyTransport(client, DEFAULT_KUBE_TARGET.namespace, token),
      nodeIps: new Map(inventory.nodes.map((n) => [n.name, n.nodeIps])),
      states: withEvidence ? kubeStateSource(inventory, { client, namespace: DEFAULT_KUBE_TARGET.namespace, token }) : kubeStateSource(inventory),
      retryBackoffMs: 0,
    });
  }

  it("a blackhole route someone added in node-2 is named, with its fix, and the hop where it breaks", async () => {
    const victim = topo.pods.find((p) => p.node === "node-1")!;
    inNetns(topo.node("node-2").netns, "ip", ["route", "add", "blackhole", `${victim.ip}/32`]);
    try {
      const report = await check(true);
      const failed = report.results.filter((r) => r.verdict === "failed");
      expect(failed.map((r) => r.pair.id).sort()).toEqual(["flatnet-system/pod-1-0>flatnet-system/pod-2-0/IPv4", "flatnet-system/pod-2-0>flatnet-system/pod-1-0/IPv4"]);
      for (const result of failed) {
        expect(result.diagnosis[0]).toMatchObject({ code: "blackhole-route", node: "node-2", fix: `ip route del blackhole ${victim.ip}` });
        expect(result.hops?.find((h) => h.status === "broken")).toMatchObject({ node: "node-2", findings: ["blackhole-route"] });
      }
      expect(api.seen.filter((s) => s.endsWith("/proxy/v1/evidence"))).toEqual(expect.arrayContaining([expect.stringContaining("pods/pod-2-0:7471/proxy/v1/evidence")]));

      // The same check without the relay (as before issue 10.4) cannot name the route.
      const before = await check(false);
      expect(before.results.filter((r) => r.verdict === "failed").flatMap((r) => r.diagnosis.map((d) => d.code))).not.toContain("blackhole-route");
    } finally {
      inNetns(topo.node("node-2").netns, "ip", ["route", "del", "blackhole", `${victim.ip}/32`], undefined, true);
    }
  }, 60_000);
});
