import { describe, expect, it } from "vitest";
import { nodeProbeSocket, nodeResponderIdentity, runsInNetns } from "./node-responder.ts";

describe("node responder", () => {
  it.each([
    ["/run/flatnet/n1.sock", "/run/flatnet/n1.probe.sock"],
    ["/tmp/lab/agents/node1.sock", "/tmp/lab/agents/node1.probe.sock"],
    ["/run/agent", "/run/agent.probe.sock"],
  ])("control socket next to the agent's: %s -> %s", (agent, probe) => expect(nodeProbeSocket(agent)).toBe(probe));

  it("identity: node:<name>, kind node, answering on the underlay IPs", () => {
    expect(nodeResponderIdentity("n1", ["172.31.0.11", "fd00::11"], ["10.244.1.0/24"])).toEqual({
      pod: "node:n1",
      kind: "node",
      node: "n1",
      podIps: ["172.31.0.11", "fd00::11"],
      nodePodCidrs: ["10.244.1.0/24"],
      nodeIps: ["172.31.0.11", "fd00::11"],
    });
  });

  it("a namespace that does not exist is never ours", async () => {
    expect(await runsInNetns("fn-tn-does-not-exist")).toBe(false);
  });
});
