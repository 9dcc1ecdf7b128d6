import { describe, expect, it } from "vitest";
import { safeParseLabState, startTimeFromStat } from "./lab-state.ts";

const state = {
  version: 1,
  prefix: "fn-",
  backend: "vxlan",
  dualStack: true,
  podsPerNode: 1,
  createdAt: "2026-12-06T00:00:00.000Z",
  clusterCidrs: ["10.244.0.0/16"],
  namespaces: ["fn-node1"],
  nodes: [{ name: "node1", index: 1, netns: "fn-node1", segment: 0, underlayIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24"] }],
  pods: [{ name: "pod-node1-1", node: "node1", index: 1, netns: "fn-pod-node1-1", containerId: "lab-fn-pod-node1-1", ifName: "eth0", ips: ["10.244.1.2"] }],
};

describe("safeParseLabState", () => {
  it("accepts the state file the lab writes", () => {
    expect(safeParseLabState(state)).toEqual({ success: true, data: state });
  });

  it.each([
    ["another version", { ...state, version: 2 }, 'invalid at "version": Invalid input: expected 1'],
    ["an unknown backend", { ...state, backend: "bgp" }, 'invalid at "backend": Invalid option: expected one of "host-gw"|"vxlan"|"auto"'],
    ["a pod without its IPs", { ...state, pods: [{ ...state.pods[0], ips: undefined }] }, 'invalid at "pods.0.ips": Invalid input: expected array, received undefined'],
  ])("names the first bad key: %s", (_name, input, message) => {
    expect(safeParseLabState(input)).toEqual({ success: false, error: { code: "ERR_LAB_STATE", message } });
  });
});

describe("startTimeFromStat", () => {
  const tail = (state: string) => `${state} 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10`;
  it.each<[string, string, string | undefined]>([
    ["plain command", `4242 (flatnet) ${tail("S")}`, "987654"],
    ["command with spaces and parentheses", `4242 (a (b) c) ${tail("R")}`, "987654"],
    ["zombie", `4242 (flatnet) ${tail("Z")}`, undefined],
    ["dead", `4242 (flatnet) ${tail("X")}`, undefined],
  ])("%s", (_name, stat, startTime) => {
    expect(startTimeFromStat(stat)).toBe(startTime);
  });
});
