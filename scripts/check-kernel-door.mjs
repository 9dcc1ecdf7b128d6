#!/usr/bin/env node
// The kernel behind one door: only apps/agent/src/linux/ spawns ip, bridge, nft, iptables*, conntrack or sysctl, or
// touches netlink. Scans product sources under apps/*/src (tests exempt); prints file:line of each breach, exit 1.
// Usage: node scripts/check-kernel-door.mjs [repo root]
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const root = resolve(process.argv[2] ?? join(import.meta.dirname, ".."));
const DOOR = ["apps", "agent", "src", "linux"].join(sep) + sep;
const TOOL = String.raw`(?:ip|bridge|nft|ip6?tables(?:-[a-z]+)?|ebtables|conntrack|sysctl)`;
// Whatever starts a process (node:child_process, Bun.spawn, the lab's run, linux/'s generic runners) named with a tool.
const RUNNER = String.raw`\b(?:spawn|spawnSync|execFile|execFileSync|exec|execSync|fork|run|runCommand|runBatch|Bun\.spawn|Bun\.spawnSync)`;
const RULES = [
  { rule: "spawns a kernel tool", pattern: new RegExp(String.raw`${RUNNER}\s*\(\s*\[?\s*["'\`]${TOOL}["'\`]`) },
  { rule: "runs a kernel tool in a namespace", pattern: new RegExp(String.raw`\bexecInNetns\s*\([^,]*,\s*["'\`]${TOOL}["'\`]`) },
  { rule: "opens a netlink socket", pattern: /\bAF_NETLINK\b|\bNETLINK_ROUTE\b|["']bun:ffi["']/ },
];
// A netlink module other than the door's own (linux/netlink.ts, reached by its relative path).
const NETLINK_IMPORT = /\b(?:from|import)\s*\(?\s*["']([^"']*netlink[^"']*)["']/;

function* sources(dir) {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules" && entry.name !== "dist") yield* sources(path);
    } else if (/\.(?:[cm]?[jt]sx?)$/.test(entry.name) && !/\.test(?:-util)?\.[cm]?[jt]sx?$|\.test\.[a-z]+\.[jt]s$/.test(entry.name)) {
      yield path;
    }
  }
}

/** Every breach in the text of the file at `path` (absolute), as { line, rule, text }. */
export function findBreaches(text, path) {
  const found = [];
  text.split("\n").forEach((line, index) => {
    const code = line.replace(/^\s*(?:\/\/|\*|\/\*).*$/, ""); // a comment may name a tool
    for (const { rule, pattern } of RULES) {
      if (pattern.test(code)) found.push({ line: index + 1, rule, text: line.trim() });
    }
    const netlink = NETLINK_IMPORT.exec(code)?.[1];
    if (netlink !== undefined && !(netlink.startsWith(".") && resolve(dirname(path), netlink).startsWith(join(root, DOOR)))) {
      found.push({ line: index + 1, rule: "imports a netlink module", text: line.trim() });
    }
  });
  return found;
}

function main() {
  const apps = join(root, "apps");
  const breaches = [];
  for (const app of readdirSync(apps, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!app.isDirectory()) continue;
    let files;
    try {
      files = [...sources(join(apps, app.name, "src"))];
    } catch {
      continue; // an app without src/
    }
    for (const file of files) {
      const rel = relative(root, file);
      if (rel.startsWith(DOOR)) continue;
      const found = findBreaches(readFileSync(file, "utf8"), file);
      const name = rel.split(sep).join("/");
      for (const b of found) breaches.push(`${name}:${b.line}: ${b.rule}: ${b.text}`);
    }
  }
  if (breaches.length > 0) {
    console.error(`The kernel is behind one door: only apps/agent/src/linux/ may spawn ip, bridge, nft, iptables*, conntrack, sysctl or use netlink (add a function there and call it).`);
    for (const line of breaches) console.error(line);
    process.exitCode = 1;
    return;
  }
  console.log("kernel door: ok (no product file outside apps/agent/src/linux/ spawns a kernel tool or uses netlink)");
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) main();
