import { describe, expect, it } from "vitest";
import { type CliEnvironment, findCli, labNeedsRoot, shellLine, whichOnPath } from "./find-cli.ts";

function environment(files: string[], over: Partial<CliEnvironment> = {}): CliEnvironment {
  const set = new Set(files);
  return { setting: undefined, path: "/usr/local/bin:/usr/bin", workspaceFolders: ["/ws"], isExecutable: (p) => set.has(p), exists: (p) => set.has(p), execPath: "/opt/code/code", runsAsNode: false, ...over };
}

describe("findCli", () => {
  it.each([
    ["a set flatnet.cli wins", ["/usr/bin/flatnet", "/usr/bin/npx"], { setting: ["npx", "flatnet"] }, { found: true, argv: ["npx", "flatnet"], from: "setting" }],
    ["flatnet on PATH, first dir first", ["/usr/local/bin/flatnet", "/usr/bin/flatnet"], {}, { found: true, argv: ["/usr/local/bin/flatnet"], from: "path" }],
    ["the workspace build, run by node on PATH", ["/usr/bin/node", "/ws/apps/agent/dist/main.js"], {}, { found: true, argv: ["/usr/bin/node", "/ws/apps/agent/dist/main.js"], from: "workspace" }],
    ["the workspace build, run by the editor's runtime as Node", ["/ws/apps/agent/dist/main.js"], {}, { found: true, argv: ["/opt/code/code", "/ws/apps/agent/dist/main.js"], from: "workspace", env: { ELECTRON_RUN_AS_NODE: "1" } }],
    ["the workspace build under code-server (already Node)", ["/ws/apps/agent/dist/main.js"], { runsAsNode: true }, { found: true, argv: ["/opt/code/code", "/ws/apps/agent/dist/main.js"], from: "workspace" }],
  ])("%s", (_, files, over, expected) => {
    expect(findCli(environment(files, over))).toEqual(expected);
  });

  it.each([
    ["a set command that is not on PATH", [], { setting: ["flatnet-x"] }, { found: false, message: 'flatnet.cli is ["flatnet-x"], but "flatnet-x" is not an executable file on PATH.' }],
    ["a set path that does not exist", [], { setting: ["/opt/flatnet"] }, { found: false, message: 'flatnet.cli is ["/opt/flatnet"], but "/opt/flatnet" is not an executable file.' }],
    ["an unbuilt clone: offers to build it", ["/ws/apps/agent/package.json"], {}, { found: false, message: "The flatnet command is not on PATH and this flatnet clone is not built (no /ws/apps/agent/dist/main.js).", fix: { kind: "build", folder: "/ws" } }],
    ["nothing at all", [], { workspaceFolders: [] }, { found: false, message: "The flatnet command is not on PATH and no workspace folder is a flatnet clone. Install it (npm link in apps/agent of a clone) or set flatnet.cli." }],
  ])("says what is missing: %s", (_, files, over, expected) => {
    expect(findCli(environment(files, over))).toEqual(expected);
  });

  it("skips empty PATH entries rather than looking in the current directory", () => {
    expect(whichOnPath("flatnet", ":/bin", (p) => p === "flatnet" || p === "/bin/flatnet")).toBe("/bin/flatnet");
    expect(whichOnPath("flatnet", undefined, () => true)).toBeUndefined();
  });
});

describe("labNeedsRoot", () => {
  it.each([
    [0, undefined],
    [undefined, undefined],
    [1000, "Verify on the lab needs root: the probes run inside the lab's network namespaces (ip netns exec)."],
  ])("uid %s", (uid, expected) => expect(labNeedsRoot(uid)).toBe(expected));
});

describe("shellLine", () => {
  it("quotes what a shell would split or expand, and nothing else", () => {
    expect(shellLine(["sudo", "flatnet", "check", "--state-dir", "/tmp/my lab", "--selector", "a=b,c=d", "it's", "$HOME"])).toBe(
      "sudo flatnet check --state-dir '/tmp/my lab' --selector a=b,c=d 'it'\\''s' '$HOME'",
    );
  });
});
