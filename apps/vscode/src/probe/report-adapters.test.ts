import { describe, expect, it } from "vitest";
import { CellMark, CellState, HeatmapModel } from "../model/matrix.ts";
import { makeSyntheticCluster, makeSyntheticRun } from "../model/synthetic.ts";
import { documentToEvents } from "./report-adapters.ts";

const cluster = { name: "lab", source: "lab" as const };
const now = "2026-11-26T06:00:00.000Z";

const labReport = {
  ok: false,
  pods: [
    { name: "p1", netns: "fn-pod-node1-1", node: "node1", ips: ["10.244.1.2"] },
    { name: "p2", netns: "fn-pod-node2-1", node: "node2", ips: ["10.244.2.2"] },
  ],
  pairs: [
    { from: "p1", to: "p2", family: "IPv4", dst: "10.244.2.2", expectedSource: "10.244.1.2", icmp: true, tcp: true, sawSource: "172.31.0.11", noNat: false, ok: false },
    { from: "p2", to: "p1", family: "IPv4", dst: "10.244.1.2", expectedSource: "10.244.2.2", icmp: false, tcp: false, noNat: false, ok: false, error: "timeout" },
  ],
  durationMs: 120,
};

describe("documentToEvents", () => {
  it("turns a lab check report into a run the matrix can fold", () => {
    const events = documentToEvents(labReport, cluster, now)!;
    expect(events.map((e) => e.type)).toEqual(["run-started", "pair-result", "pair-result", "run-finished"]);
    const matrix = new HeatmapModel(["node1", "node2"]);
    for (const event of events) matrix.apply(event);
    expect(matrix.detail("node1", "node2")).toMatchObject({ state: CellState.failed, marks: CellMark.nat });
    expect(matrix.detail("node2", "node1")).toMatchObject({ state: CellState.failed, marks: 0 });
    const last = events.at(-1)!;
    expect(last.type === "run-finished" && last.report.summary.line).toBe("2/2 pairs failed (1 NAT violations), 0 excluded");
  });

  it("passes a ProbeReport through as run-finished", () => {
    const run = makeSyntheticRun(makeSyntheticCluster({ nodes: 2, podsPerNode: 1 }));
    const finished = run.at(-1)!;
    if (finished.type !== "run-finished") throw new Error("expected run-finished");
    expect(documentToEvents(JSON.parse(JSON.stringify(finished.report)), cluster, now)).toEqual([finished]);
  });

  it.each([[{}], [[]], ["text"], [{ ok: true, pods: [], pairs: [{ from: "a" }], durationMs: 1 }]])("returns undefined for %j", (doc) => {
    expect(documentToEvents(doc, cluster, now)).toBeUndefined();
  });
});
