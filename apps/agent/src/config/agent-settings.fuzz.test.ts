import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { agentSettingsSchema, envName, flagName, resolveAgentSettings } from "./agent-config.ts";
import { ConfigError } from "./network-config.ts";

// Fuzz of the agent's settings boundary (issue 14): config file text (YAML or JSON), FLATNET_* environment and typed
// flags. Whatever arrives: settings, or a ConfigError naming where the bad value came from; never another exception.

const dir = mkdtempSync(join(tmpdir(), "fnk-settings-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const configPath = join(dir, "agent.yaml");
const KEYS = Object.keys(agentSettingsSchema.shape);

/** Settings, or the ConfigError; any other exception fails the property. */
function resolve(layers: Parameters<typeof resolveAgentSettings>[0]): { settings?: ReturnType<typeof resolveAgentSettings>; error?: ConfigError } {
  try {
    return { settings: resolveAgentSettings(layers) };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    expect(error.message).not.toMatch(/\n\s+at /);
    return { error };
  }
}

const key = fc.oneof(fc.constantFrom(...KEYS), fc.constantFrom(...KEYS.map((k) => flagName(k).slice(2))), fc.string({ maxLength: 12 }));
const scalar = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("10s", "eth0", "eth0#", "10.0.0.1", "http://10.0.0.1:2379", "true", "0", "/x", "flatnet", "", "~", "null"), fc.integer(), fc.boolean());
// YAML fragments a file may hold: plain and quoted scalars, flow lists and maps, anchors and aliases (also cyclic).
const yamlValue = fc.oneof(
  scalar.map((v) => JSON.stringify(v)),
  scalar.map(String),
  fc.array(scalar.map((v) => JSON.stringify(v)), { maxLength: 3 }).map((items) => `[${items.join(", ")}]`),
  fc.constantFrom("&a [*a]", "&b {x: *b}", "!!binary aGVsbG8=", "[[1, 2], {a: 1}]", "{? [a] : 1}", "*missing", "|\n  block\n", "0x1F", ".inf", "2001-12-14"),
);
const yamlText = fc.oneof(
  fc.array(fc.tuple(key, yamlValue), { maxLength: 5 }).map((entries) => entries.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join("\n")),
  fc.string({ maxLength: 60 }),
  fc.constantFrom("&a [*a]", "- a\n- b", "null", "42", "\"text\"", "a: &x [*x]\nb: *x", "a: 1\na: 2", "{", "\t: x"),
);

describe("agent settings fuzz", () => {
  it("any config file text: settings or a ConfigError naming the file", () => {
    fc.assert(
      fc.property(yamlText, (text) => {
        writeFileSync(configPath, text);
        const { error } = resolve({ flags: {}, flagSource: () => undefined, env: {}, configPath });
        if (error !== undefined) expect(error.message).toContain(configPath);
      }),
      { numRuns: 300 },
    );
  });

  it("any JSON config file: settings or a ConfigError naming the file and the key", () => {
    fc.assert(
      fc.property(fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }), (object) => {
        writeFileSync(configPath, JSON.stringify(object));
        const { error } = resolve({ flags: {}, flagSource: () => undefined, env: {}, configPath });
        if (error !== undefined) expect(error.message).toMatch(new RegExp(`${configPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(:| key ")`));
      }),
      { numRuns: 300 },
    );
  });

  it("any FLATNET_* environment and typed flags: settings or a ConfigError naming the flag or variable", () => {
    const values = fc.dictionary(fc.constantFrom(...KEYS), fc.oneof(scalar, fc.array(scalar, { maxLength: 3 })), { maxKeys: 4 });
    fc.assert(
      fc.property(values, fc.dictionary(fc.constantFrom(...KEYS), fc.string({ maxLength: 30 }), { maxKeys: 4 }), (typed, envValues) => {
        const env = Object.fromEntries(Object.entries(envValues).map(([k, v]) => [envName(k), v]));
        const { settings, error } = resolve({ flags: typed, flagSource: (k) => (k in typed ? "cli" : undefined), env });
        if (error !== undefined) expect(error.message).toMatch(/^(flag --|env FLATNET_)/m);
        // a flag given on the command line wins over the environment
        if (settings !== undefined) for (const k of Object.keys(typed)) expect(settings.sources[k]).toBe(`flag ${flagName(k)}`);
      }),
      { numRuns: 300 },
    );
  });

  it("a YAML alias cycle is a ConfigError naming the key, not a TypeError", () => {
    writeFileSync(configPath, "underlayIp: &a [*a]\n");
    expect(() => resolveAgentSettings({ flags: {}, flagSource: () => undefined, env: {}, configPath })).toThrow(
      new ConfigError(`${configPath} key "underlayIp" = (a value containing itself: a YAML alias cycle): Invalid input: expected string, received array`),
    );
    writeFileSync(configPath, "&a [*a]\n");
    expect(() => resolveAgentSettings({ flags: {}, flagSource: () => undefined, env: {}, configPath })).toThrow(ConfigError);
  });
});
