// The import guard (scripts/check-deps.mjs, rules in .dependency-cruiser.cjs): on the repo, and on fixture trees
// that break one rule each.
import { describe, expect, it } from "vitest";
import { guardScript, repo } from "./guard-fixture.ts";

const { tree, guard: run } = guardScript("check-deps.mjs");
const guard = (dir: string) => {
  const result = run(dir);
  return { status: result.status, stdout: result.stdout + result.stderr };
};

describe("scripts/check-deps.mjs", () => {
  it("passes the repository as it is: no file or folder cycle, no layer broken", () => {
    const result = guard(repo);
    expect(result.stdout).toMatch(/0 file cycle\(s\), 0 folder cycle\(s\), 0 violation\(s\)/);
    expect(result.status).toBe(0);
  });

  it("fails on a file cycle", () => {
    const result = guard(tree({
      "apps/agent/src/cni/plugin.ts": 'import { add } from "./add.ts";\nexport const plugin = () => add;\n',
      "apps/agent/src/cni/add.ts": 'import { plugin } from "./plugin.ts";\nexport const add = () => plugin;\n',
    }));
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("no-cycles: apps/agent/src/cni/");
  });

  it("fails on a folder cycle made of files that do not form a file cycle", () => {
    const result = guard(tree({
      "apps/agent/src/store/a.ts": 'import { b } from "../kube/b.ts";\nexport const a = () => b;\n',
      "apps/agent/src/kube/b.ts": "export const b = 1;\n",
      "apps/agent/src/kube/c.ts": 'import { d } from "../store/d.ts";\nexport const c = () => d;\n',
      "apps/agent/src/store/d.ts": "export const d = 2;\n",
    }));
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("folder-cycle: apps/agent/src/kube <-> apps/agent/src/store");
    expect(result.stdout).toContain("0 file cycle(s), 1 folder cycle(s)");
  });

  it("fails when probe imports the lab, linux imports upward, or the core imports node:*", () => {
    const result = guard(tree({
      "apps/agent/src/lab/state.ts": "export const state = 1;\n",
      "apps/agent/src/probe/engine.ts": 'import { state } from "../lab/state.ts";\nexport const engine = state;\n',
      "apps/agent/src/linux/exec.ts": 'import { engine } from "../probe/engine.ts";\nexport const exec = engine;\n',
      "packages/core/src/ip/address.ts": 'import { readFileSync } from "node:fs";\nexport const address = readFileSync;\n',
    }));
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("agent-only-cli-imports-lab: apps/agent/src/probe/engine.ts -> apps/agent/src/lab/state.ts");
    expect(result.stdout).toContain("agent-linux-is-the-bottom: apps/agent/src/linux/exec.ts -> apps/agent/src/probe/engine.ts");
    expect(result.stdout).toContain("core-is-pure: packages/core/src/ip/address.ts -> fs");
  });
});
