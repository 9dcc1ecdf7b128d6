/**
 * The extension in code-server with the Kubernetes source on, against the fake kube-apiserver (nodes) and a
 * small front that adds what a cluster check needs: the pods and pods/proxy to responders running in network
 * namespaces of this test (fn-vs-c*). "Verify flat connectivity" on the cluster must probe the cluster's pods
 * through the API server (not the lab), with the kubeconfig found by the extension's own loader; then, with a
 * stand-in of the Kubernetes extension, the view follows its kubeconfig and its context switches, and its
 * Cluster Explorer gets a "Pod network" node.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";
import { isRoot, ProbeTopology } from "../probe/topology.ts";
import { type CodeServer, codeServerMissingReason, ensureCodeServer, ensureVsix, findFrame, repoRoot, runCommand, startCodeServer } from "./code-server.ts";
import { DUMP_TITLE, USE_CONTEXT_TITLE, packKubernetesToolsStub } from "./kubernetes-tools-stub.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const PORT = 7471;
// The responders dial only for the holder of Secret flatnet-system/flatnet-probe-token; the front serves it.
const PROBE_TOKEN = "fn-vs-probe-token-0123456789";
const artifacts = join(repoRoot, "test-results", "vscode");
const flatnet = [join(repoRoot, "node_modules", ".bin", "node"), join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs"), join(repoRoot, "apps", "agent", "src", "main.ts")];
const missing = codeServerMissingReason() ?? (isRoot() ? undefined : "the responders run in network namespaces: needs root");
if (missing) console.warn(`skipping code-server cluster e2e: ${missing}`);

describe.skipIf(missing !== undefined)("the extension in code-server on a Kubernetes cluster", () => {
  const topo = new ProbeTopology("c", 2, 2, "fn-vs-");
  const fake = new FakeApiServer();
  const seen: string[] = [];
  let front: Server;
  let dir: string;
  let kubeconfig: string;
  let writeKubeconfig: (currentContext: string) => void;

  beforeAll(async () => {
    await ensureCodeServer();
    await ensureVsix();
    dir = mkdtempSync(join(tmpdir(), "fn-vs-e2e-"));
    mkdirSync(artifacts, { recursive: true });
    topo.up();
    await topo.startResponders(PORT, PROBE_TOKEN);
    await fake.start();
    for (const n of topo.nodes) {
      fake.putNode({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: n.name },
        spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] },
        status: { addresses: [{ type: "InternalIP", address: n.ip }], conditions: [{ type: "Ready", status: "True" }] },
      });
    }
    const pods = topo.pods.map((p) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: p.name, namespace: "flatnet-system", labels: { "app.kubernetes.io/name": "flatnet-probe" } },
      spec: { nodeName: p.node },
      status: { phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }], conditions: [{ type: "Ready", status: "True" }] },
    }));
    // The fake serves nodes (list + watch); this front adds pods and pods/proxy and forwards the rest to it.
    front = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      seen.push(`${req.method} ${url.pathname}`);
      const json = (body: unknown) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method === "GET" && (url.pathname === "/api/v1/pods" || url.pathname === "/api/v1/namespaces/flatnet-system/pods")) {
        if (url.searchParams.get("watch") === "true") return void res.writeHead(200, { "content-type": "application/json" }); // no changes, held open
        return json({ kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: pods });
      }
      if (req.method === "GET" && url.pathname === "/api/v1/namespaces/flatnet-system/secrets/flatnet-probe-token") {
        return json({ apiVersion: "v1", kind: "Secret", metadata: { name: "flatnet-probe-token", namespace: "flatnet-system" }, data: { token: Buffer.from(PROBE_TOKEN).toString("base64") } });
      }
      const proxy = /^\/api\/v1\/namespaces\/flatnet-system\/pods\/([^/:]+):7471\/proxy(\/.*)$/.exec(url.pathname);
      const upstream = proxy
        ? request({ socketPath: topo.controlSocket(decodeURIComponent(proxy[1]!)), path: proxy[2], method: req.method, headers: req.headers })
        : request(`${fake.url}${req.url}`, { method: req.method, headers: req.headers });
      upstream.on("response", (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", (error) => {
        if (res.headersSent) return void res.destroy();
        res.writeHead(503, { "content-type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", message: `error trying to reach service: ${error.message}` }));
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", () => resolve()));
    const server = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
    kubeconfig = join(dir, "kubeconfig");
    writeKubeconfig = (current) =>
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "fn-vs", cluster: { server, "insecure-skip-tls-verify": true } }],
          users: [{ name: "fn-vs", user: { token: "fn-vs-token" } }],
          contexts: ["fn-vs-a", "fn-vs-b"].map((name) => ({ name, context: { cluster: "fn-vs", user: "fn-vs" } })),
          "current-context": current,
        }),
      );
    writeKubeconfig("fn-vs-a");
  }, 1_200_000);

  afterAll(async () => {
    front?.closeAllConnections();
    await new Promise((resolve) => (front ? front.close(resolve) : resolve(undefined)));
    await fake.stop();
    topo.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  /** The extension's log (its LogOutputChannel's file in the profile), for the reason of a failure. */
  function extensionLog(server: CodeServer): string {
    const logs = readdirSync(server.root, { recursive: true, encoding: "utf8" }).filter((path) => path.endsWith("Flat Network.log"));
    return logs.map((path) => readFileSync(join(server.root, path), "utf8")).join("\n");
  }

  /** Runs `body` on a fresh code-server with these settings; on failure the error carries the extension's log. */
  async function withCodeServer(tag: string, settings: Record<string, unknown>, extraVsix: string[], body: (page: Page) => Promise<void>): Promise<void> {
    const server = await startCodeServer({ "flatnet.lab.enabled": false, "flatnet.cli": flatnet, ...settings }, { extraVsix });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    try {
      await page.goto(`${server.url}?folder=${encodeURIComponent(server.workspace)}`);
      await page.locator('.activitybar [aria-label^="Flat Network"]').first().click({ timeout: 60_000 });
      await body(page);
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\nextension log:\n${extensionLog(server)}`, { cause: error });
    } finally {
      await page.screenshot({ path: join(artifacts, `code-server-${tag}-last.png`) }).catch(() => {});
      await browser.close();
      await server.stop();
    }
  }

  it("Verify on a context checks that cluster through its API server, not the lab (the extension's own kubeconfig loader)", async () => {
    await withCodeServer("cluster", { "flatnet.kubeconfig": [kubeconfig] }, [], async (page) => {
      await page.getByText("fn-vs-a", { exact: true }).first().waitFor({ timeout: 30_000 });
      await page.locator('.title-actions [aria-label="Verify flat connectivity"]').first().click();
      const frame = await findFrame(page, "canvas.heatmap", 60_000);
      await frame.waitForFunction(() => /^run \S+: 12\/12 pairs$/.test(document.querySelector(".progress")?.textContent ?? ""), undefined, { timeout: 120_000 });
      expect(await frame.textContent(".summary")).toBe("0/12 pairs failed (0 NAT violations), 0 flaky, 0 inconclusive");
      const pairs = await frame.evaluate(() =>
        (window as unknown as { flatnet: { matrix: { matrix: { results(): { pair: { id: string } }[] } } } }).flatnet.matrix.matrix.results().map((r) => r.pair.id).sort(),
      );
      const ids = topo.pods.flatMap((a) => topo.pods.filter((b) => b !== a).map((b) => `flatnet-system/${a.name}>flatnet-system/${b.name}/IPv4`)).sort();
      expect(pairs).toEqual(ids);
      // Every probe went through the API server's pods/proxy: this was a cluster check.
      expect([...new Set(seen.filter((s) => s.startsWith("POST ")))].sort()).toEqual(topo.pods.map((p) => `POST /api/v1/namespaces/flatnet-system/pods/${p.name}:7471/proxy/v1/dial`).sort());
      await page.mouse.move(700, 700); // no tooltip over the tree in the screenshot
      await page.screenshot({ path: join(artifacts, "code-server-cluster-verify.png") });
      await page.locator(".statusbar").getByText("flatnet: passed").first().waitFor({ timeout: 10_000 }); // the verdict item
      // The kubeconfig file is watched: `kubectl config use-context` there switches the view.
      writeKubeconfig("fn-vs-b");
      try {
        await page.getByText("fn-vs-b", { exact: true }).first().waitFor({ timeout: 30_000 });
      } finally {
        writeKubeconfig("fn-vs-a");
      }
    });
  }, 300_000);

  it("follows the Kubernetes extension: its kubeconfig, its context switch, and a Pod network node in its Cluster Explorer", async () => {
    const dump = join(dir, "pod-network.json");
    const stub = await packKubernetesToolsStub(dir, { kubeconfig, switchTo: "fn-vs-b", dump });
    // No flatnet.kubeconfig and a KUBECONFIG that names no file: only the Kubernetes extension knows the kubeconfig.
    await withCodeServer("kubernetes-tools", {}, [stub], async (page) => {
      await page.getByText("fn-vs-a", { exact: true }).first().waitFor({ timeout: 30_000 });
      await runCommand(page, `${USE_CONTEXT_TITLE} fn-vs-b`);
      await page.getByText("fn-vs-b", { exact: true }).first().waitFor({ timeout: 30_000 });
      expect(await page.getByText("fn-vs-a", { exact: true }).count()).toBe(0);
      await page.screenshot({ path: join(artifacts, "code-server-kubernetes-tools-switch.png") });
      await runCommand(page, DUMP_TITLE);
      const deadline = Date.now() + 10_000;
      let nodes: { label: string; command?: string; children: { label: string }[] }[] = [];
      while (Date.now() < deadline) {
        try {
          nodes = JSON.parse(readFileSync(dump, "utf8"));
          break;
        } catch {
          await page.waitForTimeout(100);
        }
      }
      expect(nodes.map((n) => n.label)).toEqual(["Pod network"]);
      const children = (nodes[0]?.children ?? []) as { label: string; command?: string; children: { label: string }[] }[];
      expect(children.map((c) => c.label)).toEqual(["Verify flat connectivity", "Problems", "node-1", "node-2"]);
      expect(children[0]!.command).toBe("flatnet.verify");
      expect(children.find((c) => c.label === "node-1")!.children.map((p) => p.label)).toEqual(["flatnet-system/pod-1-0", "flatnet-system/pod-1-1"]);
    });
  }, 300_000);
});
