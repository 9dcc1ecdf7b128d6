/**
 * End to end in a real VS Code: code-server with the packaged .vsix, driven by headless Chromium. The sidebar
 * must show the lab's nodes and pod IPs, and "Verify flat connectivity" must fill the matrix. The lab is a
 * recorded one (a lab state directory and a recorded probe run), then a live one that this test brings up with
 * its own prefix (fn-tv-) and state directory and takes down afterwards, verified by the real probe engine
 * (`flatnet check --ndjson`); the live one skips with the reason when `flatnet lab up` cannot build a lab here.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSyntheticCluster, makeSyntheticRun } from "../../apps/vscode/test-support/synthetic.ts";
import { type CodeServer, codeServerMissingReason, ensureCodeServer, ensureVsix, findFrame, repoRoot, runCommand, startCodeServer } from "./code-server.ts";

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

const tsxCli = join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs");
const agentMain = join(repoRoot, "apps", "agent", "src", "main.ts");
const nodeBin = join(repoRoot, "node_modules", ".bin", "node");
const flatnet = [nodeBin, tsxCli, agentMain];

interface Scenario {
  name: string;
  /** Prepares the lab; returns the extension settings, or a reason to skip. */
  setup(dir: string): Promise<{ settings: Record<string, unknown>; nodes: string[]; podIp: string; firstNode: string } | { skip: string }>;
  teardown(dir: string): Promise<void>;
  progress: RegExp;
  summary: RegExp;
  problem?: { group: string; text: RegExp };
}

const recorded: Scenario = {
  name: "a recorded lab",
  async setup(dir) {
    const { stateDir, replay } = recordLab(dir);
    return { settings: { "flatnet.lab.stateDir": stateDir, "flatnet.probe.replay": replay }, nodes: ["node-1", "node-2", "node-3"], podIp: "10.244.0.10", firstNode: "node-1" };
  },
  async teardown() {},
  progress: /^run run-1: 6\/6 pairs$/,
  summary: /^1\/6 pairs failed \(1 NAT violations\), 0 flaky, 0 inconclusive$/,
  problem: { group: "NAT violations", text: /the receiver saw 172\.31\.0\.2, not 10\.244\.0\.10/ },
};

// The live lab: `flatnet lab up` with this test's own prefix and state dir, verified by `flatnet lab check`.
const live: Scenario = {
  name: "a live flatnet lab",
  async setup(dir) {
    if (process.getuid?.() !== 0) return { skip: "the live lab needs root (network namespaces)" };
    const stateDir = join(dir, "live-lab");
    const up = await promisify(execFile)(flatnet[0]!, [...flatnet.slice(1), "lab", "up", "--nodes", "2", "--pods-per-node", "2", "--prefix", "fn-tv-", "--state-dir", stateDir], { timeout: 180_000 }).then(
      () => undefined,
      (error: { stderr?: string; message: string }) => (error.stderr || error.message).trim().split("\n").at(-1),
    );
    if (up !== undefined) return { skip: `flatnet lab up failed: ${up}` };
    const state = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as { nodes: { name: string }[]; pods: { node: string; ips: string[] }[] };
    const firstNode = state.nodes[0]!.name;
    return {
      settings: { "flatnet.lab.stateDir": stateDir, "flatnet.cli": flatnet },
      nodes: state.nodes.map((n) => n.name),
      podIp: state.pods.find((p) => p.node === firstNode)!.ips[0]!,
      firstNode,
    };
  },
  async teardown(dir) {
    await promisify(execFile)(flatnet[0]!, [...flatnet.slice(1), "lab", "down", "--prefix", "fn-tv-", "--state-dir", join(dir, "live-lab")], { timeout: 120_000 }).catch(() => {});
  },
  // The real probe engine (`flatnet check --ndjson`); on a loaded machine a pair may need a retry (flaky).
  progress: /^run \S+: (\d+)\/\1 pairs$/,
  summary: /^\d+\/\d+ pairs failed \(0 NAT violations\), \d+ flaky, \d+ inconclusive$/,
};

describe.skipIf(missing !== undefined).each([recorded, live])("the extension in code-server, on $name", (scenario) => {
  let server: CodeServer | undefined;
  let browser: Browser;
  let page: Page;
  let dir: string;
  let expected: { nodes: string[]; podIp: string; firstNode: string };
  let skip: string | undefined;
  const tag = scenario === live ? "live" : "recorded";

  beforeAll(async () => {
    await ensureCodeServer();
    await ensureVsix();
    dir = mkdtempSync(join(tmpdir(), "fn-tv-e2e-"));
    const prepared = await scenario.setup(dir);
    if ("skip" in prepared) {
      skip = prepared.skip;
      console.warn(`skipping code-server e2e on ${scenario.name}: ${skip}`);
      return;
    }
    expected = prepared;
    server = await startCodeServer({ "flatnet.kubernetes.enabled": false, ...prepared.settings });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    mkdirSync(artifacts, { recursive: true });
    await page.goto(`${server.url}?folder=${encodeURIComponent(server.workspace)}`);
  }, 1_200_000); // the first run on a fresh machine builds code-server's native modules

  afterAll(async () => {
    await page?.screenshot({ path: join(artifacts, `code-server-${tag}-last.png`) }).catch(() => {});
    await browser?.close();
    await server?.stop();
    await scenario.teardown(dir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it("shows the lab's nodes and pod IPs in the Flat Network sidebar", async (context) => {
    if (skip) return context.skip();
    await page.locator('.activitybar [aria-label^="Flat Network"]').first().click({ timeout: 60_000 });
    await page.getByText(/^flatnet lab \(fn-tv\)$/).first().waitFor({ timeout: 30_000 });
    await page.getByText(expected.firstNode, { exact: true }).first().click();
    await page.getByText(`${expected.podIp} · Running`).first().waitFor({ timeout: 10_000 });
    const labels = await page.locator(".monaco-list-row").evaluateAll((els) => els.map((el) => el.getAttribute("aria-label") ?? el.textContent ?? ""));
    await page.screenshot({ path: join(artifacts, `code-server-${tag}-sidebar.png`) });
    const text = labels.join("\n");
    for (const item of [...expected.nodes, expected.podIp]) expect(text).toContain(item);
  }, 120_000);

  it("fills the matrix when Verify runs", async (context) => {
    if (skip) return context.skip();
    await page.locator('.title-actions [aria-label="Verify flat connectivity"]').first().click();
    const frame = await findFrame(page, "canvas.heatmap", 60_000);
    await frame.waitForFunction((source) => new RegExp(source).test(document.querySelector(".progress")?.textContent ?? ""), scenario.progress.source, { timeout: 120_000 });
    expect(await frame.textContent(".summary")).toMatch(scenario.summary);
    const states = await frame.evaluate(() => [...(window as unknown as { flatnet: { matrix: { matrix: { grid: { state: Uint8Array } } } } }).flatnet.matrix.matrix.grid.state]);
    expect(states.filter((state) => state === 1)).toEqual([]); // no cell left pending: the matrix is filled
    await page.screenshot({ path: join(artifacts, `code-server-${tag}-matrix.png`) });
    if (scenario.problem) {
      // The violation also reaches the sidebar's Problems group.
      await page.getByText("Problems", { exact: true }).first().click();
      await page.getByText(scenario.problem.group).first().click({ timeout: 10_000 });
      await page.getByText(scenario.problem.text).first().waitFor({ timeout: 10_000 });
      await page.screenshot({ path: join(artifacts, `code-server-${tag}-problems.png`) });
    }
  }, 180_000);

  it("restores the matrix panel on its cluster after a window reload (WebviewPanelSerializer)", async (context) => {
    if (skip) return context.skip();
    // The workbench's own reload: it saves the open editors (and their webview state) before it goes.
    await runCommand(page, "Developer: Reload Window");
    await page.waitForEvent("load", { timeout: 60_000 });
    const frame = await findFrame(page, "canvas.heatmap", 60_000).catch(async (error) => {
      await page.screenshot({ path: join(artifacts, `code-server-${tag}-reload.png`) });
      throw error;
    });
    await frame.waitForFunction((count) => (window as unknown as { flatnet: { matrix: { matrix: { grid: { nodes: string[] } } } } }).flatnet.matrix.matrix.grid.nodes.length === count, expected.nodes.length, { timeout: 60_000 });
    const nodes = await frame.evaluate(() => (window as unknown as { flatnet: { matrix: { matrix: { grid: { nodes: string[] } } } } }).flatnet.matrix.matrix.grid.nodes);
    expect(nodes).toEqual([...expected.nodes].sort((a, b) => a.localeCompare(b, "en", { numeric: true })));
  }, 120_000);

  it("opens the walkthrough, and its topology step draws the lab", async (context) => {
    if (skip) return context.skip();
    await runCommand(page, "Welcome: Open Walkthrough...");
    await page.keyboard.type("Learn a flat pod network");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "Learn a flat pod network" }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.press("Enter");
    for (const step of ["Bring up the lab", "See the topology", "Open a terminal in a pod", "Ping another pod's IP", "See the source IP the other side saw", "Break something and watch Verify find it"]) {
      await page.getByText(step, { exact: true }).first().waitFor({ timeout: 30_000 });
    }
    await page.screenshot({ path: join(artifacts, `code-server-${tag}-walkthrough.png`) });
    await page.getByText("See the topology", { exact: true }).first().click();
    await page.locator(".monaco-button, a, button").filter({ hasText: /^Show topology$/ }).first().click({ timeout: 10_000 });
    const frame = await findFrame(page, "[data-pod]", 60_000);
    const ips = await frame.$$eval("[data-pod] .ip", (els) => els.map((el) => el.textContent));
    expect(ips).toContain(expected.podIp);
    await page.screenshot({ path: join(artifacts, `code-server-${tag}-walkthrough-topology.png`) });
  }, 120_000);
});
