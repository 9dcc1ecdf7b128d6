#!/usr/bin/env node
// Fails when packages/core/src uses a runtime-specific API: the core must run unchanged on Node, Deno and Bun.
// tsconfig (lib ES2022, types [], noUncheckedSideEffectImports) catches most slips at typecheck; this catches the rest
// (side-effect imports of builtins, runtime specifiers, globals reached through globalThis) and names file:line.
// Usage: check-portable.mjs [dir ...]   (default: this package's src)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const roots = process.argv.length > 2 ? process.argv.slice(2) : [join(fileURLToPath(new URL(".", import.meta.url)), "..", "src")];
const builtins =
  "assert|async_hooks|buffer|child_process|cluster|console|constants|crypto|dgram|diagnostics_channel|dns|domain|events|fs|http|http2|https|inspector|module|net|os|path|perf_hooks|process|punycode|querystring|readline|repl|stream|string_decoder|sys|timers|tls|trace_events|tty|url|util|v8|vm|wasi|worker_threads|zlib";
const rules = [
  { name: "node: import", inStrings: true, pattern: /\bfrom\s+["']node:|\bimport\s*\(\s*["']node:|\bimport\s+["']node:/ },
  { name: "runtime-specific import (bun:, deno:, jsr:, npm:)", inStrings: true, pattern: /(\bfrom\s+|\bimport\s*\(?\s*)["'](bun|deno|jsr|npm):/ },
  { name: "bare Node builtin import", inStrings: true, pattern: new RegExp(`(\\bfrom\\s+|\\bimport\\s*\\(?\\s*)["'](${builtins})(/[^"']*)?["']`) },
  { name: "require()", pattern: /\brequire\s*\(/ },
  { name: "Buffer", pattern: /\bBuffer\b/ },
  { name: "process", pattern: /\bprocess\s*(\.|\[)/ },
  { name: "Deno/Bun global", pattern: /\b(Deno|Bun)\s*(\.|\[)/ },
  { name: "Node-only global", pattern: /\b(setImmediate|clearImmediate|__dirname|__filename|global)\b\s*[.(]/ },
  { name: "__dirname/__filename", pattern: /\b__(dirname|filename)\b/ },
  { name: "DOM global", pattern: /\b(window|document|navigator|localStorage|sessionStorage)\s*\./ },
];

function* files(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.(ts|mts|js|mjs)$/.test(entry) && !/\.test\.ts$/.test(entry)) yield path;
  }
}

const problems = [];
for (const root of roots) {
  for (const file of files(root)) {
    let inBlockComment = false;
    readFileSync(file, "utf8").split("\n").forEach((line, index) => {
      let code = line;
      if (inBlockComment) {
        const end = code.indexOf("*/");
        if (end === -1) return;
        code = code.slice(end + 2);
        inBlockComment = false;
      }
      code = code.replace(/\/\*.*?\*\//g, "");
      const open = code.indexOf("/*");
      if (open !== -1) {
        inBlockComment = true;
        code = code.slice(0, open);
      }
      // one pass over strings and line comments: comments go; strings stay for import rules, blank for the rest
      code = code.replace(/("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`)|\/\/.*$/g, (match, string) => (string === undefined ? "" : match));
      const bare = code.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
      for (const rule of rules) {
        if (rule.pattern.test(rule.inStrings ? code : bare)) problems.push(`${relative(process.cwd(), file)}:${index + 1}: ${rule.name} is not portable: ${line.trim()}`);
      }
    });
  }
}
if (problems.length > 0) {
  process.stderr.write(`@flatnet/core must not use runtime-specific APIs (it runs on Node, Deno and Bun):\n${problems.join("\n")}\n`);
  process.exit(1);
}
