import { describe, expect, it } from "vitest";
import { parseResponderArgs } from "./responder-cli.ts";

describe("parseResponderArgs", () => {
  it("reads identity, port and control socket", () => {
    expect(
      parseResponderArgs(["--pod", "p", "--node", "n", "--namespace", "ns", "--port", "9000", "--pod-ip", "10.244.1.2", "--pod-ip", "fd00::2", "--node-pod-cidr", "10.244.1.0/24", "--node-ip", "172.31.0.11", "--control-socket", "/tmp/x.sock"]),
    ).toEqual({
      identity: { pod: "p", node: "n", namespace: "ns", podIps: ["10.244.1.2", "fd00::2"], nodePodCidrs: ["10.244.1.0/24"], nodeIps: ["172.31.0.11"] },
      port: 9000,
      controlSocket: "/tmp/x.sock",
      dial: { allowedCidrs: ["10.244.1.0/24", "172.31.0.11/32"] },
    });
  });
  it("reads the agent's evidence socket to relay POST /v1/evidence to (absent: no relay)", () => {
    expect(parseResponderArgs(["--pod", "p", "--node", "n", "--agent-socket", "/run/flatnet/agent-evidence.sock"]).agentSocket).toBe("/run/flatnet/agent-evidence.sock");
    expect(parseResponderArgs(["--pod", "p", "--node", "n"])).not.toHaveProperty("agentSocket");
  });
  it("defaults the port to 7471", () => {
    expect(parseResponderArgs(["--pod", "p", "--node", "n"]).port).toBe(7471);
  });
  it.each([
    [["--node", "n"], /^--pod is required/],
    [["--pod", "p"], /^--node is required/],
    [["--pod", "p", "--node", "n", "--port", "0"], /^--port "0" must be an integer in 1-65535$/],
    [["--pod", "p", "--node", "n", "--port", "http"], /^--port "http" must be an integer in 1-65535$/],
    [["--pod", "p", "--node", "n", "--pod-ip", "10.244.1.300"], /^address "10.244.1.300" is not an IPv4 or IPv6 address$/],
    [["--pod", "p", "--node", "n", "--bogus"], /Unknown option '--bogus'/],
  ])("rejects %j", (argv, message) => {
    expect(() => parseResponderArgs(argv)).toThrow(message);
  });
});
