import { execFile, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";
import type { WorkloadEvent } from "../fake-apiserver/workloads.ts";
import { isRoot, ProbeTopology } from "./topology.ts";

// `flatnet check --deploy` (the built CLI) against the fake kube-apiserver: it creates the namespace and the responder
// DaemonSet, waits for it, checks through pods/proxy, and removes both, also on failure and on Ctrl-C. The test plays
// the DaemonSet controller and kubelet: one responder per node of a netns network (namespaces fn-cl-d*), started
// with the token of the Secret the DaemonSet names in its own namespace and only when the ConfigMap it mounts exists
// there, as kubelet would: the probe-token path runs end to end.

const root = fileURLToPath(new URL("../../", import.meta.url));
const main = join(root, "apps/agent/dist/main.js");
const canRun = isRoot() && existsSync(main);
if (!canRun) console.log(`check --deploy tests skipped: they need root (network namespaces) and the built CLI (${main})`);

describe.skipIf(!canRun)("flatnet check --deploy against the fake kube-apiserver", () => {
  const topo = new ProbeTopology("d", 2, 1, "fn-cl-");
  const fake = new FakeApiServer();
  let kubeconfig: string;
  /** What the DaemonSet controller does with a new DaemonSet: schedule and report it ready, or nothing (a stuck rollout). */
  let controller: "schedule" | "stuck" = "schedule";
  const created: Record<string, unknown>[] = [];
  const waiters: ((event: WorkloadEvent) => void)[] = [];
  /** The tokens the responders were (re)started with, one per scheduled DaemonSet. */
  const tokens: string[] = [];
  const netConf = JSON.stringify({ clusterCidrs: ["10.244.0.0/16"], backend: "vxlan" });

  beforeAll(async () => {
    topo.up();
    await topo.startResponders(7471);
    await fake.start();
    kubeconfig = join(topo.dir, "kubeconfig.json");
    writeFileSync(kubeconfig, fake.kubeconfig());
    for (const node of topo.nodes) {
      fake.putNode({
        metadata: { name: node.name },
        spec: { podCIDR: node.podCidr, podCIDRs: [node.podCidr] },
        status: { conditions: [{ type: "Ready", status: "True" }], addresses: [{ type: "InternalIP", address: node.ip }] },
      });
    }
    // The agent's namespace and ConfigMap (deploy/), where --deploy copies net-conf.json from.
    fake.workloads.put("namespaces", { metadata: { name: "flatnet-system" } });
    fake.workloads.put("configmaps", { metadata: { name: "flatnet-config", namespace: "flatnet-system" }, data: { "net-conf.json": netConf } });
    fake.workloads.onEvent(async (event) => {
      for (const waiter of waiters.splice(0)) waiter(event);
      if (event.resource !== "daemonsets") return;
      const ds = event.object;
      const { namespace, name } = ds.metadata;
      if (event.type === "ADDED") {
        created.push(ds);
        if (controller === "stuck") return;
        // kubelet: the pods mount the ConfigMap (no pod starts without it) and read the token from the Secret (optional).
        const spec = ds.spec.template?.spec;
        const configMap = spec?.volumes?.[0]?.configMap?.name;
        if (configMap !== undefined && fake.workloads.get("configmaps", namespace, configMap) === undefined) return;
        const ref = spec?.containers?.[0]?.env?.find((e: any) => e.name === "FLATNET_PROBE_TOKEN")?.valueFrom?.secretKeyRef;
        const secret = ref === undefined ? undefined : fake.workloads.get("secrets", namespace, ref.name);
        const token = secret === undefined ? "" : Buffer.from(secret.data[ref.key], "base64").toString("utf8");
        tokens.push(token);
        await Promise.all(topo.pods.map((pod) => topo.stopProcess(pod.name)));
        // no Secret: the responders echo but dial for nobody (a token nobody holds)
        await topo.startResponders(7471, token || `nobody-holds-this-${Math.random()}`);
        for (const pod of topo.pods) {
          fake.workloads.put("pods", {
            metadata: { name: pod.name, namespace, labels: ds.spec.template.metadata.labels, ownerReferences: [{ kind: "DaemonSet", name, uid: ds.metadata.uid }] },
            spec: { nodeName: pod.node },
            status: { phase: "Running", podIP: pod.ip, podIPs: [{ ip: pod.ip }], conditions: [{ type: "Ready", status: "True" }] },
          });
        }
        const n = topo.pods.length;
        fake.workloads.put("daemonsets", { ...ds, status: { observedGeneration: ds.metadata.generation, desiredNumberScheduled: n, numberReady: n, updatedNumberScheduled: n } });
      } else if (event.type === "DELETED") {
        // the garbage collector: a DaemonSet's pods go with it
        for (const pod of fake.workloads.list("pods", namespace)) {
          if (pod.metadata.ownerReferences?.[0]?.uid === ds.metadata.uid) fake.workloads.remove("pods", namespace, pod.metadata.name);
        }
      }
    });
    // kubelet's side of pods/proxy: the pod's responder (its control socket, from the root namespace).
    fake.workloads.proxy = (target, req, res) => {
      const upstream = request({ socketPath: topo.controlSocket(target.pod), path: target.path, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", (error) => {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", message: `error trying to reach service: ${error.message}` }));
      });
      req.pipe(upstream);
    };
  }, 120_000);

  afterEach(() => {
    controller = "schedule";
    created.length = 0;
    tokens.length = 0;
    fake.requests.length = 0;
  });

  afterAll(async () => {
    await fake.stop();
    topo.stopResponders();
    topo.cleanup();
  });

  function check(...args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
    let child!: ChildProcess;
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      child = execFile(process.execPath, [main, "check", "--deploy", "--kubeconfig", kubeconfig, "--no-mtu", "--retries", "0", ...args], { encoding: "utf8" }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr }),
      );
    });
    return { child, done };
  }
  const workloadRequests = () => fake.requests.filter((line) => /namespaces(\/|$|\?)/.test(line) && !line.includes("/proxy/")).map((line) => line.replace(/^GET (\S+daemonsets\/flatnet-probe)$/, "GET $1 (poll)"));
  const compact = (lines: string[]) => lines.filter((line, i) => line !== lines[i - 1]);

  it("creates the namespace and the DaemonSet, checks every pair, then removes both", async () => {
    const { done } = check("--namespace", "fn-cl-check", "-o", "json");
    const run = await done;
    expect(run.stderr).not.toContain("Error");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).summary.line).toBe("0/2 pairs failed (0 NAT violations), 0 excluded");
    expect(compact(workloadRequests())).toEqual([
      "GET /api/v1/namespaces/fn-cl-check",
      "POST /api/v1/namespaces",
      "GET /api/v1/namespaces/fn-cl-check/secrets/flatnet-probe-token",
      "POST /api/v1/namespaces/fn-cl-check/secrets",
      "GET /api/v1/namespaces/fn-cl-check/configmaps/flatnet-config",
      "GET /api/v1/namespaces/flatnet-system/configmaps/flatnet-config",
      "POST /api/v1/namespaces/fn-cl-check/configmaps",
      "POST /apis/apps/v1/namespaces/fn-cl-check/daemonsets",
      "GET /apis/apps/v1/namespaces/fn-cl-check/daemonsets/flatnet-probe (poll)",
      "GET /api/v1/namespaces/fn-cl-check/secrets/flatnet-probe-token",
      "GET /api/v1/namespaces/fn-cl-check/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dprobe-responder",
      "DELETE /apis/apps/v1/namespaces/fn-cl-check/daemonsets/flatnet-probe?propagationPolicy=Background",
      "DELETE /api/v1/namespaces/fn-cl-check/configmaps/flatnet-config",
      "DELETE /api/v1/namespaces/fn-cl-check/secrets/flatnet-probe-token",
      "DELETE /api/v1/namespaces/fn-cl-check?propagationPolicy=Background",
    ]);
    // the responders ran with the random token of the Secret the deploy created, and the check presented it
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatch(/^[0-9a-f]{48}$/);
    expect(run.stderr).toContain("flatnet check: created secret fn-cl-check/flatnet-probe-token (a random probe token)\n");
    expect(run.stderr).toContain("flatnet check: created configmap fn-cl-check/flatnet-config (net-conf.json copied from flatnet-system/flatnet-config)\n");
    expect(fake.workloads.list("secrets", "fn-cl-check")).toEqual([]);
    expect(fake.workloads.list("configmaps", "fn-cl-check")).toEqual([]);
    expect(fake.workloads.get("configmaps", "flatnet-system", "flatnet-config")?.data).toEqual({ "net-conf.json": netConf });
    // deploy/probe-daemonset.yaml as applied: --namespace honoured, marked as the check's own
    expect(created.map((ds: any) => [ds.metadata.namespace, ds.metadata.name, ds.metadata.annotations["flatnet.io/deployed-by"], ds.spec.template.spec.containers[0].name])).toEqual([
      ["fn-cl-check", "flatnet-probe", "flatnet-check", "responder"],
    ]);
    expect(fake.workloads.get("namespaces", undefined, "fn-cl-check")).toBeUndefined();
    expect(fake.workloads.list("daemonsets")).toEqual([]);
    expect(fake.workloads.list("pods")).toEqual([]);
    expect(run.stderr).toContain("flatnet check: created namespace fn-cl-check\n");
    expect(run.stderr).toContain("flatnet check: removing daemonset fn-cl-check/flatnet-probe\n");
  });

  it("a DaemonSet applied by hand in an existing namespace is used and left in place", async () => {
    fake.workloads.put("namespaces", { metadata: { name: "fn-cl-kept" } });
    // applied by hand as deploy/probe-daemonset.yaml says: the Secret and the ConfigMap first
    fake.workloads.put("secrets", { metadata: { name: "flatnet-probe-token", namespace: "fn-cl-kept" }, data: { token: Buffer.from("fn-test-hand-made-token-0123").toString("base64") } });
    fake.workloads.put("configmaps", { metadata: { name: "flatnet-config", namespace: "fn-cl-kept" }, data: { "net-conf.json": netConf } });
    fake.workloads.put("daemonsets", {
      metadata: { name: "flatnet-probe", namespace: "fn-cl-kept" },
      spec: {
        template: {
          metadata: { labels: { "app.kubernetes.io/component": "probe-responder" } },
          spec: {
            containers: [{ name: "responder", env: [{ name: "FLATNET_PROBE_TOKEN", valueFrom: { secretKeyRef: { name: "flatnet-probe-token", key: "token" } } }] }],
            volumes: [{ name: "config", configMap: { name: "flatnet-config" } }],
          },
        },
      },
    });
    try {
      const run = await check("--namespace", "fn-cl-kept").done;
      expect(run.stderr).not.toContain("Error");
      expect(run.code).toBe(0);
      expect(tokens).toEqual(["fn-test-hand-made-token-0123"]);
      expect(fake.workloads.get("secrets", "fn-cl-kept", "flatnet-probe-token")).toBeDefined();
      expect(fake.workloads.get("configmaps", "fn-cl-kept", "flatnet-config")).toBeDefined();
      expect(run.stderr).toContain("flatnet check: daemonset fn-cl-kept/flatnet-probe exists (applied by hand; left in place)\n");
      expect(fake.requests.filter((line) => line.startsWith("DELETE "))).toEqual([]);
      expect(fake.workloads.get("daemonsets", "fn-cl-kept", "flatnet-probe")).toBeDefined();
    } finally {
      fake.workloads.remove("namespaces", undefined, "fn-cl-kept");
    }
  });

  it("no net-conf.json to copy (the agent's ConfigMap missing): exit 2 naming it, and what it created removed", async () => {
    const agentConfig = fake.workloads.get("configmaps", "flatnet-system", "flatnet-config")!;
    fake.workloads.remove("configmaps", "flatnet-system", "flatnet-config");
    try {
      const run = await check("--namespace", "fn-cl-noconf").done;
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('configmap fn-cl-noconf/flatnet-config (key net-conf.json); copying it from flatnet-system/flatnet-config failed: flatnet-system/flatnet-config answered HTTP 404: configmaps "flatnet-config" not found');
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(created).toEqual([]);
      expect(fake.workloads.list("secrets", "fn-cl-noconf")).toEqual([]);
      expect(fake.workloads.get("namespaces", undefined, "fn-cl-noconf")).toBeUndefined();
    } finally {
      fake.workloads.put("configmaps", agentConfig);
    }
  });

  it("a rollout that never gets ready: exit 2 after --deploy-timeout, naming the DaemonSet, and everything removed", async () => {
    controller = "stuck";
    const run = await check("--namespace", "fn-cl-stuck", "--deploy-timeout", "1s").done;
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("flatnet check: daemonset fn-cl-stuck/flatnet-probe not ready within 1 s (0/0 ready, generation 1 observed none)");
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(fake.workloads.list("daemonsets")).toEqual([]);
    expect(fake.workloads.get("namespaces", undefined, "fn-cl-stuck")).toBeUndefined();
  });

  it("Ctrl-C while waiting: exit 130, and what it deployed is removed", async () => {
    controller = "stuck";
    const { child, done } = check("--namespace", "fn-cl-int");
    // interrupt once the DaemonSet exists (the CLI is then waiting for it)
    await new Promise<void>((resolve) => {
      const wait = (event: WorkloadEvent): void => {
        if (event.resource === "daemonsets" && event.type === "ADDED") resolve();
        else waiters.push(wait);
      };
      waiters.push(wait);
    });
    child.kill("SIGINT");
    const run = await done;
    expect(run.code).toBe(130);
    expect(run.stderr).toContain("flatnet check: interrupted before the check; what it deployed is removed\n");
    expect(fake.requests.filter((line) => line.startsWith("DELETE "))).toEqual([
      "DELETE /apis/apps/v1/namespaces/fn-cl-int/daemonsets/flatnet-probe?propagationPolicy=Background",
      "DELETE /api/v1/namespaces/fn-cl-int/configmaps/flatnet-config",
      "DELETE /api/v1/namespaces/fn-cl-int/secrets/flatnet-probe-token",
      "DELETE /api/v1/namespaces/fn-cl-int?propagationPolicy=Background",
    ]);
    expect(fake.workloads.list("daemonsets")).toEqual([]);
  });
});
