import { describe, expect, it } from "vitest";
import { CellMark, CellState, HeatmapModel } from "./matrix.ts";
import { makeSyntheticCluster, makeSyntheticRun } from "../../test-support/synthetic.ts";

const view = makeSyntheticCluster({ nodes: 3, podsPerNode: 1 });
const nodes = view.nodes.map((node) => node.name);

describe("HeatmapModel", () => {
  it("marks planned cells pending, then fills them in as results stream", () => {
    const events = makeSyntheticRun(view, [{ kind: "nat", src: "node-1", dst: "node-2" }]);
    const matrix = new HeatmapModel(nodes);
    matrix.apply(events[0]!);
    expect([...matrix.grid.state]).toEqual([0, 1, 1, 1, 0, 1, 1, 1, 0]);
    const changed = matrix.apply(events[1]!);
    expect(changed).toEqual([1]);
    expect(matrix.grid.state[1]).toBe(CellState.failed);
    expect(matrix.grid.marks[1]).toBe(CellMark.nat);
    expect(matrix.progress).toEqual({ done: 1, total: 6 });
    for (const event of events.slice(2)) matrix.apply(event);
    expect([...matrix.grid.state]).toEqual([0, 6, 3, 3, 0, 3, 3, 3, 0]);
    expect(matrix.finished).toBe(true);
  });

  it.each([
    ["nat", CellState.failed, CellMark.nat],
    ["unreachable", CellState.failed, CellMark.loss],
    ["mtu", CellState.failed, CellMark.mtu],
    ["loss", CellState.failed, CellMark.loss],
    ["flaky", CellState.flaky, 0],
  ] as const)("a %s fault gives state %i and marks %i", (kind, state, marks) => {
    const matrix = new HeatmapModel(nodes);
    for (const event of makeSyntheticRun(view, [{ kind, src: "node-2", dst: "node-3" }])) matrix.apply(event);
    const detail = matrix.detail("node-2", "node-3");
    expect({ state: detail.state, marks: detail.marks, pairs: detail.pairs.length }).toEqual({ state, marks, pairs: 1 });
  });

  it("replaces a retried pair's result instead of adding to it", () => {
    const events = makeSyntheticRun(view, [{ kind: "unreachable", src: "node-1", dst: "node-2" }]);
    const matrix = new HeatmapModel(nodes);
    matrix.apply(events[0]!);
    const failed = events[1]!;
    if (failed.type !== "pair-result") throw new Error("expected a pair-result");
    matrix.apply(failed);
    expect(matrix.detail("node-1", "node-2")).toMatchObject({ state: CellState.failed, diagnosis: ["node-1 has no route to 10.244.1.0/24"] });
    matrix.apply({ ...failed, result: { ...failed.result, verdict: "flaky", attempts: 2, problems: [], udpLossRatio: 0, diagnosis: [], rtt: { samples: 2, p50Ms: 0.4, p99Ms: 0.5 } } });
    expect(matrix.detail("node-1", "node-2")).toMatchObject({ state: CellState.flaky, marks: 0, rttMs: expect.closeTo(0.4, 5), diagnosis: [] });
    expect(matrix.results()).toHaveLength(1);
  });

  it("grows for nodes it did not know and ignores results of another run", () => {
    const matrix = new HeatmapModel(["node-1"]);
    const events = makeSyntheticRun(view);
    matrix.apply(events[0]!);
    expect(matrix.grid.nodes).toEqual(["node-1", "node-2", "node-3"]);
    const result = events[1]!;
    if (result.type !== "pair-result") throw new Error("expected a pair-result");
    expect(matrix.apply({ ...result, runId: "other" })).toEqual([]);
    expect(matrix.apply(result)).toEqual([1]);
  });

  it("builds the grid from a final report alone (open a recorded report)", () => {
    const matrix = new HeatmapModel([]);
    const last = makeSyntheticRun(view, [{ kind: "mtu", src: "node-3", dst: "node-1" }]).at(-1)!;
    matrix.apply(last);
    expect(matrix.grid.nodes).toEqual(["node-1", "node-2", "node-3"]);
    expect(matrix.detail("node-3", "node-1").state).toBe(CellState.failed);
    expect(matrix.finished).toBe(true);
  });

  it("records a failed run's error", () => {
    const matrix = new HeatmapModel(nodes);
    matrix.apply({ v: 1, type: "run-failed", runId: "r", error: { code: "ERR_AGENT_UNREACHABLE", message: "agent on node-1 did not answer" } });
    expect(matrix.error).toBe("ERR_AGENT_UNREACHABLE: agent on node-1 did not answer");
  });
});
