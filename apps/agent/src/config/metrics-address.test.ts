import { describe, expect, it } from "vitest";
import { resolveAgentSettings } from "./agent-config.ts";
import { formatHostPort, parseHostPort } from "./metrics-address.ts";

describe("parseHostPort (--metrics-address)", () => {
  it.each([
    ["10.0.0.5:9471", { host: "10.0.0.5", port: 9471 }],
    ["0.0.0.0:9471", { host: "0.0.0.0", port: 9471 }],
    ["127.0.0.1:1", { host: "127.0.0.1", port: 1 }],
    ["localhost:65535", { host: "localhost", port: 65535 }],
    ["[fd00::5]:9471", { host: "fd00::5", port: 9471 }],
    ["[::]:9471", { host: "::", port: 9471 }],
    // The downward API gives IPv6 without brackets: "$(HOST_IP):9471"; the last colon is the port's.
    ["fd00::5:9471", { host: "fd00::5", port: 9471 }],
    ["::1:9471", { host: "::1", port: 9471 }],
    [" 10.0.0.5:9471 ", { host: "10.0.0.5", port: 9471 }],
  ])("accepts %s", (text, expected) => {
    expect(parseHostPort(text)).toEqual(expected);
  });

  it.each([
    ["9471", /no ":PORT" or no host/],
    [":9471", /no ":PORT" or no host/],
    ["10.0.0.5", /no ":PORT" or no host/],
    ["10.0.0.5:", /port "" is not a number/],
    ["10.0.0.5:http", /port "http" is not a number/],
    ["10.0.0.5:-1", /port "-1" is not a number/],
    ["10.0.0.5:0", /port 0 is out of range/],
    ["10.0.0.5:65536", /port 65536 is out of range/],
    ["10.0.0.5:999999", /port "999999" is not a number/],
    ["10.0.0.256:9471", /"10.0.0.256" is not an IP address/],
    ["node-a.example:9471", /"node-a.example" is not an IP address/],
    ["[10.0.0.5]:9471", /"\[10.0.0.5\]" is not an IPv6 address/],
    ["[fd00::5:9471", /unbalanced brackets/],
    ["fd00::5]:9471", /unbalanced brackets/],
  ])("rejects %s naming the rule", (text, reason) => {
    const parsed = parseHostPort(text);
    expect(parsed).toHaveProperty("error");
    expect((parsed as { error: string }).error).toMatch(/^must be HOST:PORT/);
    expect((parsed as { error: string }).error).toMatch(reason);
  });

  it.each([
    [{ host: "10.0.0.5", port: 9471 }, "10.0.0.5:9471"],
    [{ host: "fd00::5", port: 9471 }, "[fd00::5]:9471"],
    [{ host: "localhost", port: 1 }, "localhost:1"],
  ])("formats %j as %s", (hostPort, text) => {
    expect(formatHostPort(hostPort)).toBe(text);
  });
});

describe("metricsAddress in the settings layers", () => {
  const none = { flags: {}, flagSource: (): string | undefined => undefined };

  it("is off by default and comes from the flag, FLATNET_METRICS_ADDRESS or the config file", () => {
    expect(resolveAgentSettings({ ...none, env: {} }).metricsAddress).toBeUndefined();
    expect(resolveAgentSettings({ ...none, env: { FLATNET_METRICS_ADDRESS: "10.0.0.5:9471" } })).toMatchObject({
      metricsAddress: "10.0.0.5:9471",
      sources: { metricsAddress: "env FLATNET_METRICS_ADDRESS" },
    });
    const flag = resolveAgentSettings({
      flags: { metricsAddress: "[fd00::5]:9471" },
      flagSource: (key) => (key === "metricsAddress" ? "cli" : undefined),
      env: { FLATNET_METRICS_ADDRESS: "10.0.0.5:9471" },
    });
    expect(flag).toMatchObject({ metricsAddress: "[fd00::5]:9471", sources: { metricsAddress: "flag --metrics-address" } });
  });

  it.each([
    ["a flag", { flags: { metricsAddress: "10.0.0.5:70000" }, flagSource: (): string | undefined => "cli", env: {} }, /flag --metrics-address = "10.0.0.5:70000": must be HOST:PORT.*port 70000 is out of range/],
    ["an env var", { ...none, env: { FLATNET_METRICS_ADDRESS: "9471" } }, /env FLATNET_METRICS_ADDRESS = "9471": must be HOST:PORT/],
  ])("rejects a bad value from %s naming the key, layer and rule (exit 2)", (_label, layers, message) => {
    expect(() => resolveAgentSettings(layers)).toThrow(message);
    try {
      resolveAgentSettings(layers);
    } catch (error) {
      expect((error as { code?: string }).code).toBe("ERR_INVALID_CONFIG");
    }
  });
});
