/**
 * The extension's walkthrough ("Learn a flat pod network with flatnet"), driven step by step in a real VS Code
 * (code-server, headless Chromium) on a live lab of its own: prefix fn-vw-, state directory in a temp dir, the
 * extension's settings pointing at both. Each step is screenshot to test-results/vscode/walkthrough-<n>-<name>.png
 * and its visible outcome asserted: the lab comes up from the step's button and the step shows done, the topology
 * draws the live lab, a pod terminal shows the pod's IP, a ping to a pod on another node is answered, Verify's
 * drill-down shows the sender's pod IP as the source the receiver saw, and after break.md's masquerade rule Verify
 * reports the NAT violation. The lab is taken down by name also on failure.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Browser, type Frame, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CodeServer, codeServerMissingReason, ensureCodeServer, ensureVsix, findFrame, repoRoot, runCommand, startCodeServer } from "./code-server.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const artifacts = join(repoRoot, "test-results", "vscode");
const PREFIX = "fn-vw-";
const flatnet = [join(repoRoot, "node_modules", ".bin", "node"), join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs"), join(repoRoot, "apps", "agent", "src", "main.ts")];
const walkthroughDir = join(repoRoot, "apps", "vscode", "media", "walkthrough");

const missing = codeServerMissingReason() ?? (process.getuid?.() !== 0 ? "the live lab needs root (network namespaces)" : undefined);
if (missing) console.warn(`skipping the code-server walkthrough e2e: ${missing}`);

interface LabState {
  nodes: { name: string; netns: string }[];
  pods: { name: string; node: string; ips: string[] }[];
}

/** The ```sh blocks of a walkthrough page, line by line (comments and blank lines dropped). */
function shellLines(page: string): string[] {
  const blocks = [...readFileSync(join(walkthroughDir, page), "utf8").matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.join("\n").split("\n").map((line) => line.replace(/\s+#.*$/, "").trim()).filter((line) => line !== "");
}

/** The text of every integrated terminal on screen (DOM renderer: settings turn GPU acceleration off). */
async function terminalText(page: Page): Promise<string> {
  return page.locator(".xterm-rows").evaluateAll((els) => els.map((el) => [...el.children].map((row) => row.textContent ?? "").join("\n")).join("\n"));
}

async function waitForTerminal(page: Page, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await terminalText(page);
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`the terminal never showed ${pattern} within ${timeoutMs} ms; it shows:\n${text.slice(-2000)}`);
    await page.waitForTimeout(250);
  }
}

async function typeLine(page: Page, line: string): Promise<void> {
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

/** Opens the walkthrough on one step (the step's title expands it). */
async function openStep(page: Page, title: string): Promise<void> {
  await runCommand(page, "Welcome: Open Walkthrough...");
  await page.keyboard.type("Learn a flat pod network");
  await page.locator(".quick-input-list .monaco-list-row", { hasText: "Learn a flat pod network" }).first().waitFor({ timeout: 10_000 });
  await page.keyboard.press("Enter");
  await page.getByText(title, { exact: true }).first().click({ timeout: 30_000 });
}

async function clickStepButton(page: Page, label: string): Promise<void> {
  await page.locator(".getting-started-step.expanded .monaco-button, .getting-started-step.expanded a, .getting-started-step.expanded button").filter({ hasText: new RegExp(`^${label}$`) }).first().click({ timeout: 10_000 });
}

/** Moves the matrix's keyboard cursor (rows: source node, columns: destination) to the src → dst cell and presses Enter (the drill-down). */
async function drillDown(frame: Frame, nodes: string[], src: string, dst: string): Promise<void> {
  const canvas = (await frame.$("canvas.heatmap"))!;
  await canvas.focus();
  for (const _ of nodes) for (const key of ["ArrowUp", "ArrowLeft"]) await canvas.press(key); // the top-left cell
  for (let i = 0; i < nodes.indexOf(src); i++) await canvas.press("ArrowDown");
  for (let i = 0; i < nodes.indexOf(dst); i++) await canvas.press("ArrowRight");
  expect(await canvas.getAttribute("aria-label")).toMatch(new RegExp(`^${src} → ${dst}:`));
  await canvas.press("Enter");
  await frame.waitForSelector(`.detail h2:has-text("${src} → ${dst}")`, { timeout: 10_000 });
}

async function detailRows(frame: Frame): Promise<string[][]> {
  return frame.$$eval(".detail tbody tr", (rows) => rows.map((row) => [...row.querySelectorAll("td")].map((td) => td.textContent ?? "")));
}

const RECEIVER_SAW = 5; // the drill-down's "receiver saw" column

describe.skipIf(missing !== undefined)("the walkthrough in code-server, step by step on a live lab", () => {
  let server: CodeServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let dir: string;
  let stateDir: string;
  let lab: LabState;
  let matrix: Frame;
  let inPod = false;
  const shot = (n: number, name: string) => page.screenshot({ path: join(artifacts, `walkthrough-${n}-${name}.png`) });
  const podOn = (node: string) => lab.pods.find((p) => p.node === node)!;

  beforeAll(async () => {
    await ensureCodeServer();
    await ensureVsix();
    dir = mkdtempSync(join(tmpdir(), "fn-vw-e2e-"));
    stateDir = join(dir, "lab");
    server = await startCodeServer({
      "flatnet.kubernetes.enabled": false,
      "flatnet.lab.stateDir": stateDir,
      "flatnet.lab.prefix": PREFIX,
      "flatnet.cli": flatnet,
      "terminal.integrated.gpuAcceleration": "off",
      "terminal.integrated.enablePersistentSessions": false,
      // Without it the walkthrough focuses a step 250 ms after selecting it (its slide animation), taking the
      // keyboard from whatever the test opened in between (a quick pick, the palette, a terminal).
      "workbench.welcomePage.preferReducedMotion": true,
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    mkdirSync(artifacts, { recursive: true });
    await page.goto(`${server.url}?folder=${encodeURIComponent(server.workspace)}`);
    await page.locator('.activitybar [aria-label^="Flat Network"]').first().click({ timeout: 60_000 });
  }, 1_200_000); // the first run on a fresh machine builds code-server's native modules

  afterAll(async () => {
    await page?.screenshot({ path: join(artifacts, "walkthrough-last.png") }).catch(() => {});
    await browser?.close();
    await server?.stop();
    // Down by name (prefix + state dir), also when a step failed half-way.
    if (dir) await promisify(execFile)(flatnet[0]!, [...flatnet.slice(1), "lab", "down", "--prefix", PREFIX, "--state-dir", stateDir], { timeout: 120_000 }).catch((error) => console.warn(`lab down: ${error}`));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it("1: brings up the lab from the step's button, and the step shows done", async () => {
    await openStep(page, "Bring up the lab");
    expect(await page.locator('[data-step-id$="labUp"]').first().getAttribute("aria-checked")).toBe("false");
    await clickStepButton(page, "Bring up the lab");
    // The command runs `flatnet lab up --prefix fn-vw- --state-dir <temp>` in a terminal named "flatnet lab".
    await waitForTerminal(page, /lab "fn-vw-" up: 3 nodes, 6 pods/, 300_000);
    expect(existsSync(join(stateDir, "state.json"))).toBe(true);
    lab = JSON.parse(readFileSync(join(stateDir, "state.json"), "utf8")) as LabState;
    await page.getByText(/^flatnet lab \(fn-vw\)$/).first().waitFor({ timeout: 30_000 });
    // completionEvents onContext:flatnet.hasLab: the step's checkbox turns on once the live lab is seen.
    await page.locator('[data-step-id$="labUp"][aria-checked="true"]').first().waitFor({ timeout: 30_000 });
    await shot(1, "lab-up");
    // The lab's terminal has done its work; closing it leaves the pod's terminal the only one on screen.
    await page.locator(".terminal-wrapper.active .xterm").first().click();
    await typeLine(page, "exit");
    await page.locator(".xterm-rows").first().waitFor({ state: "detached", timeout: 30_000 });
  }, 400_000);

  it("2: draws the topology of the live lab", async () => {
    await openStep(page, "See the topology");
    await clickStepButton(page, "Show topology");
    const frame = await findFrame(page, "[data-pod]", 60_000);
    const ips = await frame.$$eval("[data-pod] .ip", (els) => els.map((el) => el.textContent));
    expect([...ips].sort()).toEqual(lab.pods.flatMap((p) => p.ips).sort());
    await shot(2, "topology");
  }, 120_000);

  it("3: opens a terminal in a pod, where eth0 has the pod's IP", async () => {
    const pod = podOn(lab.nodes[0]!.name);
    await openStep(page, "Open a terminal in a pod");
    await clickStepButton(page, "Open a terminal in a pod");
    // The step's button asks which pod; a click on its row answers without depending on the keyboard's focus.
    await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: pod.name }).filter({ hasText: pod.ips[0]! }).click({ timeout: 10_000 });
    await page.locator(".part.panel").getByText(`pod ${pod.name}`, { exact: true }).first().waitFor({ timeout: 30_000 });
    // Keys typed before the shell's pty exists are lost: retry a marker line until the shell echoes its output.
    for (let attempt = 0; ; attempt++) {
      await page.locator(".terminal-wrapper.active .xterm").first().click({ timeout: 30_000 });
      await typeLine(page, "echo READY-$((2*3))");
      if (await waitForTerminal(page, /READY-6/, 3_000).then(() => true, () => false)) break;
      if (attempt === 10) throw new Error(`the pod's shell never answered: ${await terminalText(page)}`);
    }
    // pod-terminal.md's commands, as written.
    const lines = shellLines("pod-terminal.md");
    expect(lines).toEqual(["ip -br addr", "ip route"]);
    await typeLine(page, lines[0]!);
    await waitForTerminal(page, new RegExp(`eth0(@\\S+)?\\s+UP\\s+${pod.ips[0]!.replaceAll(".", "\\.")}/`), 30_000);
    await typeLine(page, lines[1]!);
    await waitForTerminal(page, /default via 10\.244\.\d+\.1 dev eth0/, 30_000);
    await shot(3, "pod-terminal");
    inPod = true;
  }, 120_000);

  it("4: pings a pod on another node by its IP, in that terminal", async (context) => {
    if (!inPod) return context.skip(); // never ping from this machine's own namespace
    const peer = podOn(lab.nodes[1]!.name);
    const [line] = shellLines("ping.md");
    expect(line).toMatch(/^ping -c 3 \S+$/);
    await typeLine(page, line!.replace(/\S+$/, peer.ips[0]!));
    await waitForTerminal(page, new RegExp(`64 bytes from ${peer.ips[0]!.replaceAll(".", "\\.")}: icmp_seq=1 `), 60_000);
    await waitForTerminal(page, /3 packets transmitted, 3 received, 0% packet loss/, 60_000);
    // The step is shown after the ping, not before: selecting it moves the keyboard's focus to the walkthrough.
    await openStep(page, "Ping another pod's IP");
    await shot(4, "ping");
  }, 120_000);

  it("5: Verify shows the source IP the other side saw: the sender's pod IP", async () => {
    await openStep(page, "See the source IP the other side saw");
    await clickStepButton(page, "Verify flat connectivity");
    matrix = await findFrame(page, "canvas.heatmap", 60_000);
    await matrix.waitForFunction(() => /^run \S+: (\d+)\/\1 pairs$/.test(document.querySelector(".progress")?.textContent ?? ""), undefined, { timeout: 180_000 });
    expect(await matrix.textContent(".summary")).toMatch(/\(0 NAT violations\)/);
    const [src, dst] = [lab.nodes[0]!.name, lab.nodes[1]!.name];
    await drillDown(matrix, lab.nodes.map((n) => n.name), src, dst);
    const rows = await detailRows(matrix);
    expect(rows.length).toBeGreaterThan(0);
    // "source pod" ends with the sender's IP; "receiver saw" is what the responder saw (– where nothing reports it).
    const seen = rows.map((row) => ({ sender: row[0]!.trim().split(/\s+/).at(-1)!, saw: row[RECEIVER_SAW]!.trim() })).filter((r) => r.saw !== "–");
    for (const { sender, saw } of seen) expect(saw).toBe(sender);
    const podIps = lab.pods.flatMap((p) => p.ips);
    expect(seen.filter((r) => podIps.includes(r.sender)).length).toBeGreaterThan(0);
    await shot(5, "source-ip");
  }, 300_000);

  it("6: break.md's masquerade rule makes Verify report the NAT violation", async () => {
    const node = lab.nodes[0]!;
    const [breakIt, repair] = shellLines("break.md");
    // Exactly break.md's command, for this lab's prefix (root here: no sudo).
    expect(breakIt).toMatch(/^sudo ip netns exec fn-node1 nft 'add table ip fn-break; .* masquerade'$/);
    expect(repair).toBe("sudo ip netns exec fn-node1 nft delete table ip fn-break");
    const forLab = (line: string) => line.replace(/^sudo /, "").replace("fn-node1", node.netns);
    // Run as a user would in a root shell on this machine (break.md acts on a node's namespace, not from a pod).
    await promisify(execFile)("sh", ["-c", forLab(breakIt!)]);
    try {
      const { stdout } = await promisify(execFile)("ip", ["netns", "exec", node.netns, "nft", "list", "table", "ip", "fn-break"]);
      expect(stdout).toMatch(/ip saddr 10\.244\.0\.0\/16 oifname != "fn-br0" masquerade/);
      await openStep(page, "Break something and watch Verify find it");
      await clickStepButton(page, "Verify again");
      matrix = await findFrame(page, "canvas.heatmap", 60_000);
      await matrix.waitForFunction(() => /\([1-9]\d* NAT violations\)/.test(document.querySelector(".summary")?.textContent ?? ""), undefined, { timeout: 180_000 });
      await drillDown(matrix, lab.nodes.map((n) => n.name), node.name, lab.nodes[1]!.name);
      const rows = await detailRows(matrix);
      expect(rows.some((row) => row[3]!.startsWith("failed") && /\(expected 10\.244\.\d+\.\d+\)/.test(row[RECEIVER_SAW]!))).toBe(true);
      await shot(6, "break");
    } finally {
      await promisify(execFile)("sh", ["-c", forLab(repair!)]);
    }
  }, 300_000);
});
