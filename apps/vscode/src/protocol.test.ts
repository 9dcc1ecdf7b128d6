import { describe, expect, it } from "vitest";
import { pairPath } from "./model/pair-path.ts";
import { makeSyntheticCluster, makeSyntheticRun, makeSyntheticTracedPair } from "../test-support/synthetic.ts";
import { parseHostMessage, parseWebviewMessage } from "./protocol.ts";

const cluster = makeSyntheticCluster({ nodes: 2, podsPerNode: 1 });

describe("message protocol", () => {
  it.each([
    [{ v: 1, type: "cluster", cluster }],
    [{ v: 1, type: "cluster", cluster: null }],
    [{ v: 1, type: "probe-events", events: makeSyntheticRun(cluster) }],
    [{ v: 1, type: "status", level: "warning", message: "reconnecting" }],
    [{ v: 1, type: "select", src: "node-1", dst: "node-2" }],
    [{ v: 1, type: "path", path: pairPath(makeSyntheticTracedPair()) }],
    [{ v: 1, type: "path", path: null }],
  ])("accepts host message %#", (message) => {
    expect(parseHostMessage(message)).toEqual({ success: true, data: message });
  });

  it.each([
    [{ v: 1, type: "ready", view: "matrix" }],
    [{ v: 1, type: "verify" }],
    [{ v: 1, type: "probe-pair", src: { node: "node-1" }, dst: { node: "node-2", pod: "pod-2-1" } }],
    [{ v: 1, type: "copy", text: "10.244.0.10" }],
    [{ v: 1, type: "open-report" }],
    [{ v: 1, type: "rendered", view: "topology", ms: 12.5 }],
    [{ v: 1, type: "show-path", pairId: "pod-1-0>pod-2-0/IPv4" }],
  ])("accepts webview message %#", (message) => {
    expect(parseWebviewMessage(message)).toEqual({ success: true, data: message });
  });

  it.each([
    [{ v: 2, type: "verify" }, 'webview message has protocol version 2; this build speaks version 1'],
    [{ v: 1, type: "format-disk" }, `webview message of type "format-disk" is invalid at "type": Invalid discriminator value. Expected 'ready' | 'verify' | 'probe-pair' | 'copy' | 'open-report' | 'rendered' | 'show-path'`],
    [{ v: 1, type: "show-path", pairId: "" }, 'webview message of type "show-path" is invalid at "pairId": Too small: expected string to have >=1 characters'],
    [{ v: 1, type: "copy", text: "" }, 'webview message of type "copy" is invalid at "text": Too small: expected string to have >=1 characters'],
    [{ v: 1, type: "probe-pair", src: { node: "" }, dst: { node: "b" } }, 'webview message of type "probe-pair" is invalid at "src.node": Too small: expected string to have >=1 characters'],
    ["verify", 'webview message of type (none) is invalid at "": Invalid input: expected object, received string'],
  ])("rejects webview message %j", (message, text) => {
    expect(parseWebviewMessage(message)).toEqual({ success: false, error: { code: "ERR_INVALID_MESSAGE", message: text } });
  });

  it.each([
    [{ v: 1, type: "cluster", cluster: { ...cluster, source: "ftp" } }, "cluster.source"],
    [{ v: 1, type: "probe-events", events: [{ v: 1, type: "pair-result" }] }, "events.0.runId"],
    [{ v: 0, type: "status", level: "info", message: "x" }, ""],
    [{ v: 1, type: "path", path: { ...pairPath(makeSyntheticTracedPair()), brokenAt: -1 } }, "path.brokenAt"],
    [{ v: 1, type: "path", path: { ...pairPath(makeSyntheticTracedPair()), steps: [{ role: "router", direction: "forward", name: "r", status: "ok", findings: [] }] } }, "path.steps.0.role"],
  ])("rejects host message %#", (message, path) => {
    const parsed = parseHostMessage(message);
    expect(parsed.success).toBe(false);
    if (!parsed.success && path) expect(parsed.error.message).toContain(`"${path}"`);
  });
});
