// Runs one of the repo's guard scripts on the repo or on a fixture tree written to a temp dir (removed after each test).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";

export const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function guardScript(name: string): { tree(files: Record<string, string>): string; guard(dir: string): { status: number | null; stdout: string; stderr: string } } {
  const script = join(repo, "scripts", name);
  let root: string | undefined;
  afterEach(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
    root = undefined;
  });
  return {
    tree(files) {
      root = mkdtempSync(join(tmpdir(), "fn-guard-"));
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), text);
      }
      return root;
    },
    guard(dir) {
      const result = spawnSync(process.execPath, [script, dir], { encoding: "utf8" });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    },
  };
}
