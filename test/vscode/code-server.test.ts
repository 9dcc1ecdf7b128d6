/**
 * End to end in a real VS Code: code-server with the packaged .vsix, driven by headless Chromium. The sidebar
 * must show the lab's nodes and pod IPs, and "Verify flat connectivity" must fill the matrix. The lab is a
 * recorded one (a lab state directory and a recorded probe run) unless FLATNET_E2E_LIVE_LAB names a live lab's
 * state directory, in which case the tree and the probe run come from the live lab and `flatnet check`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type Frame, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSyntheticCluster, makeSyntheticRun } from "../../apps/vscode/src/model/synthetic.ts";
import { type CodeServer, codeServerMissingReason, repoRoot, startCodeServer } from "./code-server.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const artifacts = join(repoRoot, "test-results", "vscode");
const missing = codeServerMissingReason();
if (missing) console.warn(`skipping code-server e2e: ${missing}`);

/** A recorded lab: the state file `flatnet lab` writes, for 3 nodes x 2 pods, and a recorded probe run. */
function recordLab(dir: string): { stateDir: string; replay: string } {
  const cluster = makeSyntheticCluster({ nodes: 3, podsPerNode: 2, name: "lab" });
  const stateDir = join(dir, "lab");
  mkdirSync(stateDir, { recursive: true });
  const state = {
    version: 1,
    prefix: "fn-tv-",
    backend: "vxlan",
    dualStack: false,
    podsPerNode: 2,
    createdAt: "2026-11-26T06:00:00.000Z",
    clusterCidrs: cluster.clusterCidrs,
    namespaces: [],
    nodes: cluster.nodes.map((node, i) => ({ name: node.name, index: i + 1, netns: `fn-tv-${node.name}`, segment: 0, underlayIps: node.internalIps, podCidrs: node.podCidrs })),
    pods: cluster.pods.map((pod, i) => ({ name: pod.name, netns: `fn-tv-pod-${pod.name}`, node: pod.node, index: i + 1, containerId: `c${i}`, ifName: "eth0", ips: pod.ips })),
  };
  writeFileSync(join(stateDir, "state.json"), JSON.stringify(state, null, 2));
  const events = makeSyntheticRun(cluster, [{ kind: "nat", src: "node-1", dst: "node-2" }]);
  const replay = join(dir, "run.ndjson");
  writeFileSync(replay, events.map((event) => JSON.stringify(event)).join("\n") + "\n");
  return { stateDir, replay };
}

async function findFrame(page: Page, selector: string, timeoutMs: number): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of page.frames()) {
      if (await frame.$(selector).catch(() => null)) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no frame with ${selector} within ${timeoutMs} ms`);
    await page.waitForTimeout(200);
  }
}

describe.skipIf(missing !== undefined)("the extension in code-server", () => {
  let server: CodeServer;
  let browser: Browser;
  let page: Page;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-tv-e2e-"));
    const { stateDir, replay } = recordLab(dir);
    server = await startCodeServer({
      "flatnet.kubernetes.enabled": false,
      "flatnet.lab.stateDir": stateDir,
      "flatnet.probe.replay": replay,
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    mkdirSync(artifacts, { recursive: true });
    await page.goto(`${server.url}?folder=${encodeURIComponent(server.workspace)}`);
  }, 180_000);

  afterAll(async () => {
    await page?.screenshot({ path: join(artifacts, "code-server-last.png") }).catch(() => {});
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows the lab's nodes and pod IPs in the Flat Network sidebar", async () => {
    await page.locator('.activitybar [aria-label^="Flat Network"]').first().click({ timeout: 60_000 });
    const rows = page.locator(".monaco-list-row");
    await page.getByText("flatnet lab (fn-tv)").first().waitFor({ timeout: 30_000 });
    await page.getByText("node-1", { exact: true }).first().click();
    await page.getByText("10.244.0.10 · Running").first().waitFor({ timeout: 10_000 });
    const labels = await rows.evaluateAll((els) => els.map((el) => el.getAttribute("aria-label") ?? el.textContent ?? ""));
    await page.screenshot({ path: join(artifacts, "code-server-sidebar.png") });
    const text = labels.join("\n");
    for (const expected of ["node-1", "node-2", "node-3", "172.31.0.2", "10.244.0.0/24", "pod-1-1", "10.244.0.10"]) expect(text).toContain(expected);
  }, 120_000);

  it("fills the matrix when Verify runs", async () => {
    await page.locator('.pane-header [aria-label="Verify flat connectivity"], .title-actions [aria-label="Verify flat connectivity"]').first().click();
    const frame = await findFrame(page, "canvas.heatmap", 60_000);
    await frame.waitForFunction(() => /^run run-1: 6\/6 pairs$/.test(document.querySelector(".progress")?.textContent ?? ""), undefined, { timeout: 30_000 });
    expect(await frame.textContent(".summary")).toBe("1/6 pairs failed (1 NAT violations), 0 flaky, 0 inconclusive");
    await page.screenshot({ path: join(artifacts, "code-server-matrix.png") });
    // The NAT violation also reaches the sidebar's Problems group.
    await page.getByText("Problems", { exact: true }).first().click();
    await page.getByText("NAT violations").first().waitFor({ timeout: 10_000 });
    await page.getByText("NAT violations").first().click();
    await page.getByText(/the receiver saw 172\.31\.0\.2, not 10\.244\.0\.10/).first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(artifacts, "code-server-problems.png") });
  }, 120_000);
});
