import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeSyntheticCluster, makeSyntheticRun } from "../test-support/synthetic.ts";
import { parseHostMessage, parseWebviewMessage, PROTOCOL_VERSION } from "./protocol.ts";
import { parseSettings, SETTING_KEYS, settingsSchema } from "./settings.ts";

// Fuzz of the extension's input boundaries: webview messages in both directions and `flatnet.*` settings.
// VS Code carries webview messages as JSON and settings from JSON files, so inputs are JSON values: arbitrary ones and
// near misses of valid ones. Whatever arrives: no throw, and a rejection is ERR_INVALID_MESSAGE naming the side and
// the type, or a settings problem naming the setting and falling back to its default.

const cluster = makeSyntheticCluster({ nodes: 2, podsPerNode: 1 });
const validHost = [
  { v: 1, type: "cluster", cluster },
  { v: 1, type: "cluster", cluster: null },
  { v: 1, type: "probe-events", events: makeSyntheticRun(cluster) },
  { v: 1, type: "status", level: "warning", message: "reconnecting" },
  { v: 1, type: "select", src: "node-1", dst: "node-2" },
];
const validWebview = [
  { v: 1, type: "ready", view: "matrix" },
  { v: 1, type: "verify" },
  { v: 1, type: "probe-pair", src: { node: "node-1" }, dst: { node: "node-2", pod: "pod-2-1" } },
  { v: 1, type: "copy", text: "10.244.0.10" },
  { v: 1, type: "open-report" },
  { v: 1, type: "rendered", view: "topology", ms: 12.5 },
];

/** A valid message with one field (top level or nested) replaced, removed or added. */
function nearMiss(valid: Record<string, unknown>[]): fc.Arbitrary<unknown> {
  return fc.tuple(fc.constantFrom(...valid), fc.constantFrom("v", "type", "view", "src", "dst", "text", "ms", "cluster", "events", "level", "message", "node", "pod"), fc.option(fc.jsonValue({ maxDepth: 2 })), fc.boolean()).map(
    ([message, key, value, nested]) => {
      const copy = structuredClone(message) as Record<string, any>;
      const target = nested && typeof copy.src === "object" ? copy.src : nested && Array.isArray(copy.events) && copy.events.length > 0 ? copy.events[0] : copy;
      if (value === null) delete target[key];
      else target[key] = value;
      return copy;
    },
  );
}

function expectClearRejection(result: ReturnType<typeof parseHostMessage> | ReturnType<typeof parseWebviewMessage>, side: string): void {
  if (result.success) return;
  expect(result.error.code).toBe("ERR_INVALID_MESSAGE");
  expect(result.error.message).toMatch(new RegExp(`^${side} message (has protocol version|of type .* is invalid at ")`));
  expect(result.error.message).not.toMatch(/\n\s+at /);
}

describe("webview protocol fuzz", () => {
  const input = (valid: Record<string, unknown>[]) => fc.oneof(fc.jsonValue({ maxDepth: 3 }), nearMiss(valid), fc.record({ v: fc.constant(PROTOCOL_VERSION), type: fc.string() }));

  it("host -> webview: any JSON value is accepted as sent or rejected with ERR_INVALID_MESSAGE, never a throw", () => {
    fc.assert(
      fc.property(input(validHost), (message) => {
        const result = parseHostMessage(message);
        expectClearRejection(result, "host");
        if (result.success) expect((result.data as { v: number }).v).toBe(PROTOCOL_VERSION);
      }),
      { numRuns: 500 },
    );
  });

  it("webview -> host: any JSON value is accepted as sent or rejected with ERR_INVALID_MESSAGE, never a throw", () => {
    fc.assert(
      fc.property(input(validWebview), (message) => {
        const result = parseWebviewMessage(message);
        expectClearRejection(result, "webview");
        // an accepted copy request stays within its bound
        if (result.success && result.data.type === "copy") expect(result.data.text.length).toBeLessThanOrEqual(4096);
      }),
      { numRuns: 500 },
    );
  });
});

describe("settings fuzz", () => {
  it("any JSON values for any flatnet.* settings: valid ones apply, each bad one is named once and falls back to its default", () => {
    const defaults = settingsSchema.parse({});
    const values = fc.dictionary(fc.constantFrom(...SETTING_KEYS), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom([], [""], ["flatnet"], "", "a=b", "a=b,c", 250, -1, 1e9, 1.5, true)), { maxKeys: 6 });
    fc.assert(
      fc.property(values, (given) => {
        const { settings, problems } = parseSettings((key) => given[key as keyof typeof given]);
        for (const key of SETTING_KEYS) {
          const named = problems.filter((p) => p.startsWith(`flatnet.${key}: `));
          if (!(key in given)) {
            expect(named).toEqual([]);
            expect(settings[key]).toEqual(defaults[key]);
          } else if (named.length === 1) {
            expect(named[0]).toMatch(/; using the default$/);
            expect(settings[key]).toEqual(defaults[key]);
          } else {
            expect(named).toEqual([]);
            expect(settings[key]).toEqual(given[key]);
          }
        }
        expect(problems.length).toBeLessThanOrEqual(Object.keys(given).length);
      }),
      { numRuns: 500 },
    );
  });
});
