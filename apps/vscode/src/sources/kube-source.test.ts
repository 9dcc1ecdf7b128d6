import { describe, expect, it } from "vitest";
import { describeKubeError } from "./kube-source.ts";

describe("describeKubeError", () => {
  it.each([
    [{ code: 403, body: JSON.stringify({ kind: "Status", message: 'pods is forbidden: User "x" cannot list resource "pods"' }) }, 'HTTP 403: pods is forbidden: User "x" cannot list resource "pods"'],
    [{ code: 500, body: "not json" }, "HTTP 500"],
    [new Error("connect ECONNREFUSED 127.0.0.1:6443\n    at TCPConnectWrap"), "connect ECONNREFUSED 127.0.0.1:6443"],
    ["x".repeat(200), `${"x".repeat(157)}...`],
  ])("%#", (error, text) => expect(describeKubeError(error)).toBe(text));
});
