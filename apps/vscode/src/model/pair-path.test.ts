import { describe, expect, it } from "vitest";
import { pairPath, pairPathSchema } from "./pair-path.ts";
import { makeSyntheticTracedPair as blackholedPair } from "../../test-support/synthetic.ts";

describe("pairPath", () => {
  it("lays the hops out pod to pod and back, marks the first broken hop and places its finding there", () => {
    const path = pairPath(blackholedPair());
    expect(path.steps.map((s) => `${s.direction} ${s.role} ${s.name} ${s.status}`)).toEqual([
      "forward src-pod default/pod-1-0 ok",
      "forward src-node node-1 ok",
      "forward underlay underlay ok",
      "forward dst-node node-2 broken",
      "forward dst-pod default/pod-2-0 ok",
      "reply dst-pod default/pod-2-0 ok",
      "reply dst-node node-2 unknown",
      "reply src-node node-1 unknown",
      "reply src-pod default/pod-1-0 ok",
    ]);
    expect(path.brokenAt).toBe(3);
    expect(path.steps[3]).toMatchObject({ packet: "10.244.1.2 > 10.244.2.2", decision: "blackhole" });
    expect(path.steps[3]!.findings).toEqual([{ code: "blackhole-route", node: "node-2", message: "node-2: route blackhole 10.244.2.2 drops packets to pod-2-0", fix: "ip route del blackhole 10.244.2.2" }]);
    expect(path.unplaced.map((f) => f.code)).toEqual(["agent-unreachable"]);
    expect(path.traced).toBe(true);
    expect(pairPathSchema.safeParse(path).success).toBe(true);
  });

  it("prefers the finding of the hop's own node when two nodes show the same code", () => {
    const result = blackholedPair();
    result.diagnosis.unshift({ code: "blackhole-route", node: "node-1", message: "node-1: another blackhole" });
    const path = pairPath(result);
    expect(path.steps[3]!.findings.map((f) => f.node)).toEqual(["node-2"]);
    expect(path.unplaced.map((f) => f.message)).toEqual(["node-1: another blackhole", "node-3: the agent did not answer"]);
  });

  it("a code with no diagnosis still shows, named by its code", () => {
    const result = blackholedPair();
    result.diagnosis = [];
    expect(pairPath(result).steps[3]!.findings).toEqual([{ code: "blackhole-route", message: "blackhole-route" }]);
  });

  it("a pair without hops draws only its endpoints, nothing broken, every finding unplaced", () => {
    const result = blackholedPair();
    delete result.hops;
    const path = pairPath(result);
    expect(path.steps.map((s) => s.role)).toEqual(["src-pod", "dst-pod"]);
    expect(path.brokenAt).toBeUndefined();
    expect(path.traced).toBe(false);
    expect(path.unplaced).toHaveLength(2);
  });
});
