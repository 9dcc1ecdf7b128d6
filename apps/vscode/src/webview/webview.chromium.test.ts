/**
 * The real webview bundle in headless Chromium, fed recorded clusters and probe runs through the message
 * protocol, in dark, light and high-contrast themes. Screenshots go to test-results/vscode/.
 */
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterView } from "../model/cluster-view.ts";
import { CellState } from "../model/matrix.ts";
import { pairPath } from "../model/pair-path.ts";
import { makeSyntheticCluster, makeSyntheticRun, makeSyntheticTracedPair } from "../../test-support/synthetic.ts";
import { buildWebviewBundle, chromiumMissingReason, launchChromium, openWebview, resultsDir } from "../../test-support/webview-page.ts";
import type { ThemeKind } from "../../test-support/themes.ts";

const missing = chromiumMissingReason();
if (missing) console.warn(`skipping webview rendering tests: ${missing}`);

function labCluster(): ClusterView {
  const view = makeSyntheticCluster({ nodes: 3, podsPerNode: 2, name: "lab" });
  view.source = "lab";
  view.id = "lab:/run/flatnet/lab";
  view.pods.push({ namespace: "default", name: "stray", node: "node-2", ips: ["10.99.0.7"], phase: "Running", hostNetwork: false });
  return view;
}

const faults = [
  { kind: "nat" as const, src: "node-1", dst: "node-2" },
  { kind: "unreachable" as const, src: "node-2", dst: "node-3" },
  { kind: "mtu" as const, src: "node-3", dst: "node-1" },
  { kind: "flaky" as const, src: "node-1", dst: "node-3" },
];

describe.skipIf(missing !== undefined)("webviews in headless Chromium", () => {
  let browser: Browser;
  let bundle: { dir: string; cleanup: () => void };

  beforeAll(async () => {
    bundle = await buildWebviewBundle();
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    bundle?.cleanup();
  });

  it.each<ThemeKind>(["dark", "light", "high-contrast"])("draws the topology: node boxes with their pods and IPs (%s)", async (theme) => {
    const wp = await openWebview(browser, bundle.dir, "topology", theme);
    await wp.post({ v: 1, type: "cluster", cluster: labCluster() });
    await wp.waitForPosted("rendered");
    const nodes = await wp.page.$$eval("section.node", (els) => els.map((el) => ({ node: el.getAttribute("data-node"), pods: [...el.querySelectorAll(".pod")].map((p) => `${p.querySelector(".pod-name")?.textContent} ${p.querySelector(".ip")?.textContent}`) })));
    expect(nodes).toEqual([
      { node: "node-1", pods: ["pod-1-1 10.244.0.10", "pod-1-2 10.244.0.11"] },
      { node: "node-2", pods: ["pod-2-1 10.244.1.10", "pod-2-2 10.244.1.11", "stray 10.99.0.7"] },
      { node: "node-3", pods: ["pod-3-1 10.244.2.10", "pod-3-2 10.244.2.11"] },
    ]);
    expect(await wp.page.$$eval(".pod.bad .pod-name", (els) => els.map((e) => e.textContent))).toEqual(["stray"]);
    expect(await wp.page.textContent(".flat-network")).toContain("10.244.0.0/16");
    await wp.page.click('[data-pod="default/pod-1-1"]');
    await wp.waitForPosted("copy");
    expect((await wp.posted()).filter((m) => m.type === "copy")).toEqual([{ v: 1, type: "copy", text: "10.244.0.10" }]);
    expect(await wp.cspViolations()).toEqual([]);
    await wp.page.screenshot({ path: join(resultsDir(), `topology-${theme}.png`), fullPage: true });
    await wp.page.close();
  });

  it.each<ThemeKind>(["dark", "light", "high-contrast"])("fills the matrix as results stream and drills down on click (%s)", async (theme) => {
    const wp = await openWebview(browser, bundle.dir, "matrix", theme);
    const cluster = labCluster();
    await wp.post({ v: 1, type: "cluster", cluster });
    const events = makeSyntheticRun(cluster, faults);
    await wp.post({ v: 1, type: "probe-events", events: events.slice(0, 3) });
    await wp.page.waitForFunction(() => document.querySelector(".progress")?.textContent === "probing… 2/6 pairs");
    expect(await wp.page.getAttribute("#verify", "disabled")).toBe("");
    await wp.post({ v: 1, type: "probe-events", events: events.slice(3) });
    await wp.page.waitForFunction(() => document.querySelector(".progress")?.textContent === "run run-1: 6/6 pairs");
    const grid = await wp.page.evaluate(() => [...(window as unknown as { flatnet: { matrix: { matrix: { grid: { state: Uint8Array } } } } }).flatnet.matrix.matrix.grid.state]);
    expect(grid).toEqual([0, CellState.failed, CellState.flaky, CellState.ok, 0, CellState.failed, CellState.failed, CellState.ok, 0]);
    expect(await wp.page.textContent(".summary")).toBe("3/6 pairs failed (1 NAT violations), 1 flaky, 0 inconclusive");

    // The failed cell is painted in the theme's red, the ok cell in its green-to-yellow RTT scale.
    const pixel = (row: number, col: number) =>
      wp.page.evaluate(
        ([row, col]) => {
          const canvas = document.querySelector("canvas.heatmap") as HTMLCanvasElement;
          const ratio = window.devicePixelRatio || 1;
          const x = Math.round((96 + col! * 40 + 6) * ratio);
          const y = Math.round((96 + row! * 40 + 6) * ratio);
          return [...canvas.getContext("2d")!.getImageData(x, y, 1, 1).data.slice(0, 3)];
        },
        [row, col],
      );
    const red = await pixel(0, 1);
    const green = await pixel(1, 0);
    expect(red[0]).toBeGreaterThan(red[1]! + 80);
    expect(green[1]).toBeGreaterThan(green[2]! + 40);

    const box = (await wp.page.locator("canvas.heatmap").boundingBox())!;
    await wp.page.mouse.move(box.x + 96 + 2 * 40 + 20, box.y + 96 + 1 * 40 + 20);
    await wp.page.waitForSelector(".tooltip:not([hidden])");
    expect(await wp.page.textContent(".tooltip")).toContain("node-2 has no route to 10.244.2.0/24");
    await wp.page.mouse.click(box.x + 96 + 1 * 40 + 20, box.y + 96 + 0 * 40 + 20);
    await wp.page.waitForSelector(".detail table");
    const rows = await wp.page.$$eval(".detail tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(rows).toEqual([["pod-1-1 10.244.0.10", "pod-2-1 10.244.1.10", "IPv4", "failed", expect.stringMatching(/µs|ms/), "172.31.0.2 (expected 10.244.0.10)", "nat-violation", "node-1 masquerades pod traffic to the cluster CIDR", " show"]]);
    await wp.page.screenshot({ path: join(resultsDir(), `matrix-${theme}.png`), fullPage: true });

    await wp.page.click(".detail h2 button");
    await wp.page.click("#open-report");
    await wp.post({ v: 1, type: "probe-events", events: [{ v: 1, type: "run-started", runId: "run-2", startedAt: "x", cluster: { name: "lab", source: "lab" }, options: (events[0] as { options: unknown }).options, plan: { mode: "node-pairs", families: ["IPv4"], pairs: [], excluded: [] } }] });
    await wp.page.waitForFunction(() => document.querySelector(".progress")?.textContent === "probing… 0/0 pairs");
    await wp.page.click("#verify", { force: true });
    const posted = (await wp.posted()).filter((m) => m.type !== "rendered" && m.type !== "ready");
    expect(posted).toEqual([
      { v: 1, type: "probe-pair", src: { node: "node-1" }, dst: { node: "node-2" } },
      { v: 1, type: "open-report" },
    ]);
    expect(await wp.cspViolations()).toEqual([]);
    await wp.page.close();
  });

  it("drills down from the keyboard: arrows move over the cells, Enter opens the pairs", async () => {
    const wp = await openWebview(browser, bundle.dir, "matrix", "dark");
    const cluster = labCluster();
    await wp.post({ v: 1, type: "cluster", cluster });
    await wp.post({ v: 1, type: "probe-events", events: makeSyntheticRun(cluster, faults) });
    await wp.page.waitForFunction(() => document.querySelector(".progress")?.textContent === "run run-1: 6/6 pairs");
    await wp.page.focus("canvas.heatmap");
    for (const key of ["ArrowDown", "ArrowRight", "ArrowLeft", "ArrowRight"]) await wp.page.keyboard.press(key);
    expect(await wp.page.getAttribute("canvas.heatmap", "aria-label")).toBe("node-1 → node-2: failed, 1 pairs. Enter shows them.");
    await wp.page.keyboard.press("Enter");
    await wp.page.waitForSelector(".detail table");
    expect(await wp.page.textContent(".detail h2")).toMatch(/^node-1 → node-2failed/);
    await wp.page.click(".detail .show-path");
    await wp.waitForPosted("show-path");
    expect((await wp.posted()).filter((m) => m.type === "show-path")).toEqual([{ v: 1, type: "show-path", pairId: expect.stringMatching(/^pod-1-1>pod-2-1/) }]);
    await wp.page.close();
  });

  it.each<ThemeKind>(["dark", "high-contrast"])("draws a selected pair's path under the topology and marks the hop where it breaks, with its finding and fix (%s)", async (theme) => {
    const wp = await openWebview(browser, bundle.dir, "topology", theme);
    await wp.post({ v: 1, type: "cluster", cluster: labCluster() });
    await wp.post({ v: 1, type: "path", path: pairPath(makeSyntheticTracedPair()) });
    await wp.page.waitForSelector(".pair-path");
    const legs = await wp.page.$$eval(".path-leg", (ols) => ols.map((ol) => [...ol.querySelectorAll(":scope > .hop")].map((li) => `${li.getAttribute("data-role")} ${li.querySelector(".hop-name")?.textContent?.trim()}`)));
    expect(legs).toEqual([
      ["src-pod default/pod-1-0", "src-node node-1", "underlay underlay", "dst-node node-2", "dst-pod default/pod-2-0"],
      ["dst-pod default/pod-2-0", "dst-node node-2", "src-node node-1", "src-pod default/pod-1-0"],
    ]);
    const broken = await wp.page.$$eval(".hop.breaks", (els) => els.map((el) => ({
      role: el.getAttribute("data-role"),
      direction: el.getAttribute("data-direction"),
      decision: el.querySelector(".decision")?.textContent,
      findings: [...el.querySelectorAll(".finding")].map((f) => [f.getAttribute("data-code"), f.querySelector(".finding-message")?.textContent?.trim(), f.querySelector(".fix code")?.textContent]),
    })));
    expect(broken).toEqual([{ role: "dst-node", direction: "forward", decision: "blackhole", findings: [["blackhole-route", "node-2: route blackhole 10.244.2.2 drops packets to pod-2-0", "ip route del blackhole 10.244.2.2"]] }]);
    expect(await wp.page.$$eval("section.node.path-breaks", (els) => els.map((el) => el.getAttribute("data-node")))).toEqual(["node-2"]);
    expect(await wp.page.textContent(".findings.unplaced")).toContain("node-3: the agent did not answer");
    await wp.page.click(".hop.breaks .fix");
    await wp.waitForPosted("copy");
    expect((await wp.posted()).filter((m) => m.type === "copy")).toEqual([{ v: 1, type: "copy", text: "ip route del blackhole 10.244.2.2" }]);
    expect(await wp.cspViolations()).toEqual([]);
    await wp.page.screenshot({ path: join(resultsDir(), `topology-path-${theme}.png`), fullPage: true });
    await wp.post({ v: 1, type: "path", path: null });
    await wp.page.waitForFunction(() => document.querySelector(".pair-path") === null);
    await wp.page.close();
  });

  it("shows an invalid host message as an error line and keeps working", async () => {
    const wp = await openWebview(browser, bundle.dir, "matrix", "dark");
    await wp.post({ v: 7, type: "cluster", cluster: null });
    await wp.page.waitForSelector(".status-line.error");
    expect(await wp.page.textContent(".status-line")).toBe(" host message has protocol version 7; this build speaks version 1");
    await wp.post({ v: 1, type: "status", level: "info", message: "Verifying lab…" });
    await wp.page.waitForFunction(() => document.querySelector(".status-line")?.textContent === " Verifying lab…");
    await wp.page.close();
  });

  it("blocks an inline script without the nonce (CSP)", async () => {
    const wp = await openWebview(browser, bundle.dir, "topology", "dark");
    await wp.page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.__injected = true";
      document.body.append(script);
    });
    await wp.page.waitForFunction(() => (window as unknown as { __csp: string[] }).__csp.length > 0);
    expect(await wp.page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
    expect(await wp.cspViolations()).toEqual(["script-src-elem inline"]);
    await wp.page.close();
  });
});
