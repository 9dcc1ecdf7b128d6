import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProbeEvent } from "@flatnet/core";
import { afterAll, describe, expect, it } from "vitest";
import { makeSyntheticCluster, makeSyntheticRun } from "../../test-support/synthetic.ts";
import { NdjsonSplitter, type LineOutcome } from "./ndjson.ts";
import { replayProbeRun, spawnProbeRun } from "./probe-runner.ts";

const dir = mkdtempSync(join(tmpdir(), "fn-tv-runner-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const run = makeSyntheticRun(makeSyntheticCluster({ nodes: 2, podsPerNode: 1 }));
const ndjson = run.map((e) => JSON.stringify(e)).join("\n") + "\n";

async function collect(start: (cb: { onEvents: (e: ProbeEvent[]) => void; onWarning: (m: string) => void }) => { done: Promise<void> }) {
  const events: ProbeEvent[] = [];
  const warnings: string[] = [];
  await start({ onEvents: (e) => events.push(...e), onWarning: (m) => warnings.push(m) }).done;
  return { events, warnings };
}

function script(name: string, body: string): string[] {
  const path = join(dir, name);
  writeFileSync(path, body);
  return [process.execPath, path];
}

describe("NdjsonSplitter", () => {
  it("joins lines split across chunks, skips blank lines and names bad lines", () => {
    const outcomes: LineOutcome[] = [];
    const splitter = new NdjsonSplitter((o) => outcomes.push(o));
    const text = `${JSON.stringify(run[0])}\n\n{oops\n${JSON.stringify({ v: 1, type: "nope" })}\n${JSON.stringify(run[1])}`;
    for (let i = 0; i < text.length; i += 7) splitter.push(text.slice(i, i + 7));
    splitter.end();
    expect(outcomes.map((o) => (o.ok ? o.event.type : o.message))).toEqual([
      "run-started",
      'probe output line 3 is not JSON: "{oops"',
      `probe output line 4 is not a probe event: at "type": Invalid discriminator value. Expected 'run-started' | 'pair-result' | 'retry-started' | 'run-finished' | 'run-failed'`,
      "pair-result",
    ]);
  });
});

describe("spawnProbeRun", () => {
  it("streams NDJSON events from the command", async () => {
    const command = script("ndjson.mjs", `process.stdout.write(${JSON.stringify(ndjson)});`);
    const { events, warnings } = await collect((cb) => spawnProbeRun(command, process.env, cb));
    expect(events).toEqual(run);
    expect(warnings).toEqual([]);
  });

  it("fails a run whose output is one JSON document instead of NDJSON events, naming the line", async () => {
    const last = run.at(-1)!;
    if (last.type !== "run-finished") throw new Error("expected run-finished");
    const command = script("report.mjs", `process.stdout.write(${JSON.stringify(JSON.stringify(last.report))}); process.exitCode = 1;`);
    const { events, warnings } = await collect((cb) => spawnProbeRun(command, process.env, cb));
    expect(warnings).toEqual([expect.stringMatching(/^probe output line 1 is not a probe event: at "type": /)]);
    expect(events).toEqual([{ v: 1, type: "run-failed", runId: "unknown", error: { code: "ERR_PROBE_EXIT", message: `${command.join(" ")}: ${warnings[0]}` } }]);
  });

  it.each([
    ["a command that fails without output", `process.stderr.write("flatnet check: not built yet\\n"); process.exitCode = 2;`, "ERR_PROBE_EXIT", "flatnet check: not built yet"],
    ["output that stops before run-finished", `process.stdout.write(${JSON.stringify(JSON.stringify(run[0]) + "\n")});`, "ERR_PROBE_EXIT", "exited with code 0 without a probe report"],
  ])("reports %s as run-failed", async (_name, body, code, detail) => {
    const command = script(`fail-${code}-${detail.length}.mjs`, body);
    const { events } = await collect((cb) => spawnProbeRun(command, process.env, cb));
    expect(events.at(-1)).toMatchObject({ type: "run-failed", error: { code, message: expect.stringContaining(detail) } });
  });

  it("cancel kills the command mid-run and ends the run as cancelled", async () => {
    // Prints run-started, then would run forever: only the kill ends it.
    const command = script("forever.mjs", `process.stdout.write(${JSON.stringify(JSON.stringify(run[0]) + "\n")}); setInterval(() => {}, 1000);`);
    const events: ProbeEvent[] = [];
    let started!: () => void;
    const first = new Promise<void>((resolve) => (started = resolve));
    const probe = spawnProbeRun(command, process.env, { onEvents: (e) => (events.push(...e), started()), onWarning: () => {} });
    await first;
    probe.cancel();
    await probe.done;
    expect(events.map((e) => e.type)).toEqual(["run-started", "run-failed"]);
    expect(events.at(-1)).toEqual({ v: 1, type: "run-failed", runId: "run-1", error: { code: "ERR_PROBE_CANCELLED", message: `cancelled: ${command.join(" ")} was stopped` } });
  });

  it("reports a missing command as ERR_PROBE_SPAWN", async () => {
    const { events } = await collect((cb) => spawnProbeRun(["/nonexistent/flatnet", "check"], process.env, cb));
    expect(events).toEqual([{ v: 1, type: "run-failed", runId: "unknown", error: { code: "ERR_PROBE_SPAWN", message: expect.stringContaining("ENOENT") } }]);
  });
});

describe("replayProbeRun", () => {
  it("replays a recorded NDJSON run", async () => {
    const path = join(dir, "run.ndjson");
    writeFileSync(path, ndjson);
    expect((await collect((cb) => replayProbeRun(path, cb))).events).toEqual(run);
  });

  it("reports a missing recording", async () => {
    const { events } = await collect((cb) => replayProbeRun(join(dir, "missing.ndjson"), cb));
    expect(events).toEqual([{ v: 1, type: "run-failed", runId: "replay", error: { code: "ERR_PROBE_REPLAY", message: expect.stringContaining("cannot be read") } }]);
  });
});
