import { request } from "node:http";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { killAgent, labDown, labUp, removeNode, startAgent } from "../../apps/agent/src/lab/lab.ts";
import { labCheck } from "../e2e/pod-checker/pod-checker.ts";
import { isRecordedProcessAlive } from "../../apps/agent/src/lab/supervisor.ts";
import { listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";
import { waitFor } from "../../apps/agent/src/wait.ts";
import { existsSync } from "node:fs";

// `flatnet lab up --datastore etcd`: etcd inside the lab's underlay namespace, agents in the node namespaces on it,
// across two L2 segments (auto: the second segment reaches etcd through the lab's router).
const PREFIX = "fn-tk-";
const isRoot = process.getuid?.() === 0;
const haveEtcd = existsSync("/usr/bin/etcd");
if (!isRoot || !haveEtcd) console.warn(`skipping the etcd lab test: ${!isRoot ? "needs root (network namespaces)" : "/usr/bin/etcd missing"}`);

function get(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(!isRoot || !haveEtcd)("flatnet lab on etcd", { timeout: 180_000 }, () => {
  let stateDir = "";
  afterAll(async () => {
    if (stateDir) await labDown({ stateDir, prefix: PREFIX }).catch(() => {});
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
  });

  it("comes up on etcd, every pod pair reachable without NAT, metrics on the agent socket, nodes leave and the lab goes", async () => {
    stateDir = await mkdtemp(join(tmpdir(), `flatnet-${PREFIX}`));
    const state = await labUp({ nodes: 3, podsPerNode: 1, backend: "auto", prefix: PREFIX, stateDir, datastore: "etcd" }).catch(async (error) => {
      const { readFile } = await import("node:fs/promises");
      console.error(await readFile(join(stateDir, "logs", "node1.log"), "utf8").catch(() => "no log"));
      throw error;
    });
    expect(state.datastore).toBe("etcd");
    expect(state.etcd?.endpoint).toBe("http://172.31.0.1:2379");
    expect(new Set(state.nodes.map((n) => n.podCidrs[0])).size).toBe(3);

    const report = await labCheck({ stateDir });
    expect(report.pairs.filter((pair) => !pair.ok)).toEqual([]);
    for (const pair of report.pairs) expect(pair.sawSource).toBe(pair.expectedSource);

    const node2 = state.nodes[1]!;
    // The agent re-reads the plugin's IPAM database on its own timer (1 s in a lab; a scrape never opens it): wait
    // until its figures show node2's pod.
    const podIps = `flatnet_node_pod_ips{pod_cidr="${node2.podCidrs[0]}",state="used"} 1`;
    let metrics: string[] = [];
    const seen = await waitFor(async () => (metrics = (await get(node2.agent!.socket, "/metrics")).body.split("\n")).includes(podIps), { timeoutMs: 30_000, maxIntervalMs: 500 });
    expect(seen, `${podIps} in /metrics`).toBe(true);
    const line = (prefix: string) => metrics.filter((l) => l.startsWith(prefix));
    expect(line("flatnet_datastore_info")).toEqual(['flatnet_datastore_info{kind="etcd"} 1']);
    expect(line("flatnet_cluster_node_cidrs")).toEqual([
      'flatnet_cluster_node_cidrs{pool="10.244.0.0/16",state="used"} 3',
      'flatnet_cluster_node_cidrs{pool="10.244.0.0/16",state="free"} 253',
    ]);
    expect(line(`flatnet_node_pod_ips{pod_cidr="${node2.podCidrs[0]}",state="used"}`)).toEqual([
      `flatnet_node_pod_ips{pod_cidr="${node2.podCidrs[0]}",state="used"} 1`,
    ]);
    for (const name of ["flatnet_sync_duration_seconds_count", "flatnet_peer_convergence_seconds_count", 'flatnet_sync_errors_total{kind="datastore"}']) {
      expect(line(name)).toHaveLength(1);
    }

    // A crashed agent restarts on etcd again (not on an empty embedded store) and keeps its node's pod CIDRs.
    expect(await killAgent("node2", { stateDir })).toBeGreaterThan(0);
    await startAgent("node2", { stateDir, timeoutMs: 60_000 });
    const self = JSON.parse((await get(node2.agent!.socket, "/v1/node")).body) as { podCidrs: string[] };
    expect(self.podCidrs).toEqual(node2.podCidrs);

    await removeNode("node3", { stateDir });
    const etcd = state.etcd!;
    await labDown({ stateDir, prefix: PREFIX });
    stateDir = "";
    expect(await isRecordedProcessAlive(etcd)).toBe(false);
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
  });
});
