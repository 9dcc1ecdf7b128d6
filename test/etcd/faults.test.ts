import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EtcdDatastore } from "../../apps/agent/src/datastore/etcd-datastore.ts";
import { startEtcd, type RunningEtcd } from "../../apps/agent/test-support/start-etcd.ts";
import { waitUntil } from "../../apps/agent/test-support/wait-until.ts";
import { KubeDatastore } from "../../apps/agent/src/datastore/kube-datastore.ts";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";
import { expectedRoutes, TestAgent } from "./harness.ts";

// Fault tests: real datastores (a real etcd, the fake apiserver through client-node) and the real reconcile loop
// against fake kernels. Every wait is on a condition of the real state, bounded.

const haveEtcd = existsSync("/usr/bin/etcd");
if (!haveEtcd) console.warn("skipping etcd fault tests: /usr/bin/etcd missing (apt-get install etcd-server)");
const network = { clusterCidrs: ["10.244.0.0/16"], backend: "host-gw" as const };

describe.skipIf(!haveEtcd)("faults with the etcd datastore", { timeout: 60_000 }, () => {
  let etcd: RunningEtcd;
  let agents: TestAgent[] = [];
  let prefixes = 0;
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterEach(async () => {
    for (const agent of agents) await agent.stop();
    agents = [];
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const cluster = (count: number, options: { requestTimeoutMs?: number } = {}) => {
    const prefix = `/faults-${++prefixes}`;
    const open = () => new EtcdDatastore({ endpoints: [etcd.endpoint], prefix, networkConfig: network, requestTimeoutMs: options.requestTimeoutMs ?? 1500 });
    const made = Array.from({ length: count }, (_, i) => new TestAgent(`node${i + 1}`, `172.31.0.${11 + i}`, open));
    agents.push(...made);
    return { open, agents: made };
  };
  const converged = (all: TestAgent[]) => all.every((agent) => JSON.stringify(agent.routes()) === JSON.stringify(expectedRoutes(agent, all)));

  it("datastore unreachable: routes kept, retries back off, reconverges when etcd returns (etcd restarted)", async () => {
    const { open, agents: [a, b, c] } = cluster(3);
    for (const agent of [a!, b!, c!]) await agent.start();
    await waitUntil("3 nodes converged", () => converged([a!, b!, c!]));
    const before = a!.routes();

    await etcd.kill(); // etcd down; its data stays
    a!.reconciler!.trigger("test: resync while etcd is down");
    await waitUntil("three failed syncs on node1", () => a!.failures().length >= 3);
    const failures = a!.failures();
    expect(failures.every((f) => f.kind === "datastore")).toBe(true);
    // Exponential backoff: every retry waits longer than the one before, up to the cap.
    const delays = failures.slice(0, 3).map((f) => f.retryInMs);
    expect(delays).toEqual([...delays].sort((x, y) => x - y));
    expect(delays[2]!).toBeGreaterThan(delays[0]!);
    expect(a!.routes()).toEqual(before); // nothing flushed while blind

    await etcd.restart();
    const d = new TestAgent("node4", "172.31.0.14", open);
    agents.push(d);
    await waitUntil("node4 registered once etcd is back", async () => {
      try {
        await d.start();
        return true;
      } catch {
        await d.stop();
        return false;
      }
    });
    await waitUntil("all 4 nodes converged after the restart", () => converged([a!, b!, c!, d]));
    expect(a!.routes()).toHaveLength(3);
  });

  it("a node deleted while its peers' agents were down is cleaned from their kernels after restart", async () => {
    const { open, agents: [a, b, c] } = cluster(3);
    for (const agent of [a!, b!, c!]) await agent.start();
    await waitUntil("3 nodes converged", () => converged([a!, b!, c!]));
    await b!.stop();
    await c!.stop();
    expect(b!.routes()).toContain(`${a!.podCidrs[0]} via 172.31.0.11`); // still programmed: agents never flush

    const operator = open();
    await a!.stop();
    await operator.remove("node1");
    await operator.close();

    await b!.start();
    await c!.start();
    await waitUntil("node2 and node3 to drop node1", () => converged([b!, c!]));
    expect(b!.routes()).toEqual([`${c!.podCidrs[0]} via 172.31.0.13`]);
    expect(c!.routes()).toEqual([`${b!.podCidrs[0]} via 172.31.0.12`]);
  });

  it.each([1, 2, 3])("two agents racing for CIDRs get distinct ones and route to each other (round %i)", async () => {
    const { agents: [a, b] } = cluster(2);
    await Promise.all([a!.start(), b!.start()]);
    expect(a!.podCidrs).not.toEqual(b!.podCidrs);
    await waitUntil("both converged", () => converged([a!, b!]));
  });
});

describe("faults with the Kubernetes datastore (fake apiserver)", { timeout: 60_000 }, () => {
  let fake: FakeApiServer;
  let agents: TestAgent[] = [];
  afterEach(async () => {
    for (const agent of agents) await agent.stop();
    agents = [];
    await fake?.stop();
  });
  const kubeletNode = (name: string, ip: string, cidr: string) => ({
    metadata: { name },
    spec: { podCIDR: cidr, podCIDRs: [cidr] },
    status: { addresses: [{ type: "InternalIP", address: ip }], conditions: [{ type: "Ready", status: "True" }] },
  });
  const start = async (count: number) => {
    fake = new FakeApiServer();
    await fake.start();
    for (let i = 1; i <= count; i++) fake.putNode(kubeletNode(`node${i}`, `172.31.0.${10 + i}`, `10.244.${i}.0/24`));
    const open = () => {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromString(fake.kubeconfig());
      return new KubeDatastore({ kubeConfig, networkConfig: network });
    };
    const made = Array.from({ length: count }, (_, i) => new TestAgent(`node${i + 1}`, `172.31.0.${11 + i}`, open));
    agents.push(...made);
    for (const agent of made) await agent.start();
    return made;
  };
  const converged = (all: TestAgent[]) => all.every((agent) => JSON.stringify(agent.routes()) === JSON.stringify(expectedRoutes(agent, all)));

  it("a watch dropped mid-stream resumes and the loop sees the next change", async () => {
    const [a, b] = await start(2);
    await waitUntil("2 nodes converged", () => converged([a!, b!]));
    fake.dropWatches();
    fake.putNode(kubeletNode("node3", "172.31.0.13", "10.244.3.0/24"));
    await waitUntil("node1 routes to node3 after the resumed watch", () => a!.routes().includes("10.244.3.0/24 via 172.31.0.13"));
  });

  it("apiserver down: routes kept; when it returns, a node deleted meanwhile is cleaned", async () => {
    const [a, b, c] = await start(3);
    await waitUntil("3 nodes converged", () => converged([a!, b!, c!]));
    await c!.stop();
    fake.setUnavailable(true);
    a!.reconciler!.trigger("test: resync while the apiserver is down");
    await waitUntil("a sync after the outage began", () => a!.outcomes.length >= 2);
    // The informer's cache still answers: the agent keeps (and keeps programming) what it last knew.
    expect(a!.routes()).toEqual(expectedRoutes(a!, [a!, b!, c!]));
    fake.deleteNode("node3"); // the cloud controller removed it while the apiserver was unreachable for agents
    fake.setUnavailable(false);
    await waitUntil("node1 and node2 drop node3", () => converged([a!, b!]));
  });

  it("a node deleted while its peers' agents were down is cleaned after restart", async () => {
    const [a, b, c] = await start(3);
    await waitUntil("3 nodes converged", () => converged([a!, b!, c!]));
    for (const agent of [a!, b!, c!]) await agent.stop();
    fake.deleteNode("node1");
    await b!.start();
    await waitUntil("node2 drops node1", () => JSON.stringify(b!.routes()) === JSON.stringify(["10.244.3.0/24 via 172.31.0.13"]));
  });
});
