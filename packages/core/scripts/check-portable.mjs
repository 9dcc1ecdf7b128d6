#!/usr/bin/env node
// Fails when packages/core/src uses a runtime-specific API: the core must run unchanged on Node, Deno and Bun.
// tsconfig (lib ES2022, types []) catches most slips at typecheck; this catches the rest (imports, globals in JS-only paths).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = process.argv[2] ?? join(fileURLToPath(new URL(".", import.meta.url)), "..", "src");
const rules = [
  { name: "node: import", pattern: /\bfrom\s+["']node:|\bimport\s*\(\s*["']node:|\bimport\s+["']node:|\brequire\s*\(/ },
  { name: "bare Node builtin import", pattern: /\bfrom\s+["'](fs|path|os|net|child_process|crypto|util|events|stream|buffer|url|http|https|dgram|dns|tls|zlib|worker_threads)(\/[^"']*)?["']/ },
  { name: "Buffer", pattern: /\bBuffer\b/ },
  { name: "process", pattern: /\bprocess\s*\./ },
  { name: "Deno/Bun global", pattern: /\b(Deno|Bun)\s*\./ },
  { name: "DOM global", pattern: /\b(window|document|navigator|localStorage|sessionStorage)\s*\./ },
  { name: "__dirname/__filename", pattern: /\b__(dirname|filename)\b/ },
];

function* files(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.(ts|mts|js|mjs)$/.test(entry) && !/\.test\.ts$/.test(entry)) yield path;
  }
}

const problems = [];
for (const file of files(root)) {
  const lines = readFileSync(file, "utf8").split("\n");
  lines.forEach((line, index) => {
    const code = line.replace(/\/\/.*$/, "");
    for (const rule of rules) {
      if (rule.pattern.test(code)) problems.push(`${relative(process.cwd(), file)}:${index + 1}: ${rule.name} is not portable: ${line.trim()}`);
    }
  });
}
if (problems.length > 0) {
  process.stderr.write(`@flatnet/core must not use runtime-specific APIs (it runs on Node, Deno and Bun):\n${problems.join("\n")}\n`);
  process.exit(1);
}
