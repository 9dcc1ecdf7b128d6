import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bashCompletion, completionTree, zshCompletion } from "./completion.ts";
import { createProgram } from "./program.ts";

const main = fileURLToPath(new URL("../../dist/main.js", import.meta.url));
const built = existsSync(main);
if (!built) console.log(`completion test of the built CLI skipped: ${main} is missing; build first`);
const hasBash = spawnSync("bash", ["--version"]).status === 0;
const hasZsh = spawnSync("zsh", ["--version"]).status === 0;
if (!hasZsh) console.log("zsh completion test skipped: no zsh (scripts/bootstrap.sh installs it)");

/** Completes `line` (the cursor at its end) in a real bash with the script sourced as docs/cli.md says; sorted candidates. */
function complete(script: string, line: string): string[] {
  const program = `
source <(printf '%s' "$SCRIPT")
declare -F _flatnet >/dev/null || exit 3
read -ra COMP_WORDS <<< "$LINE"
[[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
_flatnet
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const out = execFileSync("bash", ["--norc", "--noprofile", "-c", program], { encoding: "utf8", env: { PATH: process.env.PATH, LINE: line, SCRIPT: script } });
  return out.split("\n").filter(Boolean).sort();
}

describe.skipIf(!hasBash)("flatnet completion bash, sourced in bash", () => {
  const script = bashCompletion(createProgram());

  it.each<[string, string[]]>([
    ["flatnet ", ["agent", "check", "completion", "help", "lab", "plan", "trace", "version"]],
    ["flatnet l", ["lab"]],
    ["flatnet lab st", ["start-agent", "status"]],
    ["flatnet lab --state-dir /tmp/x st", ["start-agent", "status"]],
    ["flatnet check --mo", ["--mode"]],
    ["flatnet check --mode ", ["all-pods", "node-pairs"]],
    ["flatnet lab up --backend ", ["auto", "host-gw", "vxlan"]],
    ["flatnet lab status --state-dir /tmp/x -o ", ["json", "text", "wide", "yaml"]],
    ["flatnet version -", ["--client", "--context", "--help", "--json", "--kubeconfig", "--namespace", "--output", "--state-dir", "-h", "-o"]],
    ["flatnet completion ", ["bash", "zsh"]],
    ["flatnet --v", ["--version"]],
    ["flatnet agent --log-f", ["--log-format"]],
    ["flatnet agent --log-format ", ["json", "text"]],
    ["flatnet probe", []], // hidden: internal
  ])("%j -> %j", (line, expected) => {
    expect(complete(script, line)).toEqual(expected);
  });

  it("a free value completes file names", () => {
    expect(complete(script, `flatnet plan --node x ${fileURLToPath(new URL("../../package.j", import.meta.url))}`)).toEqual([
      fileURLToPath(new URL("../../package.json", import.meta.url)),
    ]);
    expect(complete(script, `flatnet check --junit ${fileURLToPath(new URL("../../tsup.conf", import.meta.url))}`)).toEqual([
      fileURLToPath(new URL("../../tsup.config.ts", import.meta.url)),
    ]);
  });

  it.skipIf(!built)("the built CLI prints the same script", () => {
    expect(execFileSync(process.execPath, [main, "completion", "bash"], { encoding: "utf8" })).toBe(script);
  });
});

describe.skipIf(!hasZsh)("flatnet completion zsh, sourced in zsh", () => {
  // zsh's compgen (bashcompinit) returns every candidate and lets compadd filter by the typed prefix, so these lines end
  // at a word boundary; _flatnet runs as _bash_complete runs it, under `emulate sh`.
  it.each<[string[], string[]]>([
    [["flatnet", "lab", ""], ["add-node", "check", "down", "help", "kill-agent", "remove-node", "start-agent", "status", "up"]],
    [["flatnet", "check", "--mode", ""], ["all-pods", "node-pairs"]],
    [["flatnet", "completion", ""], ["bash", "zsh"]],
  ])("%j -> %j", (words, expected) => {
    const program = `source <(print -r -- "$SCRIPT")
complete -p | grep -qx 'complete -o default -F _flatnet flatnet' || exit 3
COMP_WORDS=(\${(z)LINE}); [[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( \${#COMP_WORDS} - 1 ))
emulate sh -c _flatnet
print -l -- "\${COMPREPLY[@]}"`;
    const out = execFileSync("zsh", ["-f", "-c", program], { encoding: "utf8", env: { PATH: process.env.PATH, HOME: "/nonexistent", SCRIPT: zshCompletion(createProgram()), LINE: words.join(" ") } });
    expect(out.split("\n").filter(Boolean).sort()).toEqual(expected);
  });
});

describe("completionTree", () => {
  it("has every visible command path with its flags, and the choices of each valued flag", () => {
    const tree = completionTree(createProgram());
    expect(tree.map((node) => node.path)).toEqual([
      "", "version", "plan", "agent", "lab", "lab up", "lab down", "lab status", "lab check", "lab add-node", "lab remove-node",
      "lab kill-agent", "lab start-agent", "check", "trace", "completion",
    ]);
    const check = tree.find((node) => node.path === "check")!;
    expect(check.values.get("--family")).toEqual(["IPv4", "IPv6", "all"]);
    expect(check.values.get("--junit")).toEqual([]);
    expect(check.values.has("--watch")).toBe(false);
  });
});
