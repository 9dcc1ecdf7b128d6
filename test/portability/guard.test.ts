import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Plants runtime-specific code in a temporary copy of core's src and shows that both the portability guard
// (packages/core/scripts/check-portable.mjs) and the typecheck (lib ES2022, types [], noUncheckedSideEffectImports) reject it.
const repo = fileURLToPath(new URL("../../", import.meta.url));
const core = join(repo, "packages/core");

const plants = [
  { file: "ip/address.ts", line: 'import "node:fs";', guard: "node: import", tsc: "TS2307: Cannot find module 'node:fs'" },
  { file: "cidr/cidr.ts", line: 'import { join } from "path"; export const joined = join("a", "b");', guard: "bare Node builtin import", tsc: "TS2307: Cannot find module 'path'" },
  { file: "cidr/split.ts", line: "export const home = process.env.HOME;", guard: "process", tsc: "TS2591: Cannot find name 'process'" },
  { file: "ipam/node-ipam.ts", line: 'export const bytes = Buffer.from("x");', guard: "Buffer", tsc: "TS2591: Cannot find name 'Buffer'" },
  { file: "ipam/cluster-ipam.ts", line: "export const argv = Deno.args;", guard: "Deno/Bun global", tsc: "TS2304: Cannot find name 'Deno'" },
  { file: "errors.ts", line: "export const later = () => setImmediate(() => {});", guard: "Node-only global", tsc: "TS2304: Cannot find name 'setImmediate'" },
];

function copyCore(): string {
  const dir = mkdtempSync(join(tmpdir(), "flatnet-portable-"));
  cpSync(join(core, "src"), join(dir, "src"), { recursive: true });
  // the copy resolves zod & co. from the monorepo, and extends the same base config
  symlinkSync(join(repo, "node_modules"), join(dir, "node_modules"), "dir");
  const tsconfig = JSON.parse(readFileSync(join(core, "tsconfig.json"), "utf8"));
  tsconfig.extends = join(repo, "tsconfig.base.json");
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  return dir;
}

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 240_000 });
  return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

const guard = (dir: string) => run(process.execPath, [join(core, "scripts/check-portable.mjs"), join(dir, "src")], dir);
const typecheck = (dir: string) => run(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-p", join(dir, "tsconfig.json"), "--pretty", "false"], dir);

describe("portability guard and typecheck", () => {
  const dirs: string[] = [];
  let clean = "";
  let planted = "";

  beforeAll(() => {
    clean = copyCore();
    // look-alikes the guard must not flag: comments, JSDoc, strings with URLs, identifiers that merely contain the words
    writeFileSync(
      join(clean, "src", "look-alikes.ts"),
      [
        "// process.env.HOME and Buffer.from() in a line comment",
        "/* require(\"fs\") in a block comment */",
        "/**",
        " * import { readFileSync } from \"node:fs\"; Deno.args in JSDoc",
        " */",
        'export const url = "http://example.invalid/process.exit"; // and a trailing comment: Bun.serve',
        "export const processed = { processing: 1 };",
        "export const globalish = globalThis.Math.max(1, 2);",
      ].join("\n"),
    );
    planted = copyCore();
    dirs.push(clean, planted);
    for (const plant of plants) {
      const path = join(planted, "src", plant.file);
      writeFileSync(path, `${plant.line}\n${readFileSync(path, "utf8")}`);
    }
  });

  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("an unmodified copy (plus look-alikes in comments and strings) passes both", () => {
    expect(guard(clean)).toEqual({ status: 0, output: "" });
    const result = typecheck(clean);
    expect(result.status, result.output).toBe(0);
  }, 240_000);

  describe("a copy with planted runtime APIs fails both, naming each plant", () => {
    let guardResult: { status: number | null; output: string };
    let tscResult: { status: number | null; output: string };
    beforeAll(() => {
      guardResult = guard(planted);
      tscResult = typecheck(planted);
    }, 240_000);

    it("both exit non-zero", () => {
      expect(guardResult.status).toBe(1);
      expect(tscResult.status).not.toBe(0);
    });

    it.each(plants)("$file: $line", ({ file, line, guard: rule, tsc }) => {
      expect(guardResult.output).toContain(`src/${file}:1: ${rule} is not portable: ${line}`);
      expect(tscResult.output).toContain(`src/${file}(1,`);
      expect(tscResult.output).toContain(tsc);
    });
  });
});
