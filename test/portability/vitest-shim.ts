// Runs core test files unchanged under `deno test`: the subset of vitest's API they use, on Deno.test + jest's expect.
// packages/core/deno.json maps the "vitest" import here. Bun needs no shim: `bun test` maps "vitest" itself.
import { expect as jestExpect } from "npm:expect@^30";

declare const Deno: {
  test(definition: { name: string; fn: () => Promise<void>; ignore?: boolean; only?: boolean }): void;
};
declare const globalThis: { addEventListener?: (type: string, listener: () => void) => void };

type Fn = () => unknown;
type Each = (table: readonly unknown[]) => (name: string, fn: (...args: never[]) => unknown) => void;

interface Scope {
  name: string;
  parent: Scope | undefined;
  beforeAll: Fn[];
  afterAll: Fn[];
  beforeEach: Fn[];
  afterEach: Fn[];
  ranBeforeAll: boolean;
  pending: number;
}

const root: Scope = { name: "", parent: undefined, beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], ranBeforeAll: false, pending: 0 };
let current = root;

function chain(scope: Scope): Scope[] {
  const scopes: Scope[] = [];
  for (let s: Scope | undefined = scope; s; s = s.parent) scopes.unshift(s);
  return scopes;
}

function fullName(name: string): string {
  return [...chain(current).map((s) => s.name).filter((n) => n !== ""), name].join(" > ");
}

function register(name: string, fn: Fn | undefined, mode: "run" | "skip" | "only"): void {
  const scopes = chain(current);
  if (mode !== "skip" && fn) for (const scope of scopes) scope.pending++;
  Deno.test({
    name: fullName(name),
    ignore: mode === "skip" || !fn,
    only: mode === "only",
    fn: async () => {
      try {
        for (const scope of scopes) {
          if (!scope.ranBeforeAll) {
            scope.ranBeforeAll = true;
            for (const hook of scope.beforeAll) await hook();
          }
        }
        for (const scope of scopes) for (const hook of scope.beforeEach) await hook();
        try {
          await fn!();
        } finally {
          for (const scope of [...scopes].reverse()) for (const hook of scope.afterEach) await hook();
        }
      } finally {
        for (const scope of [...scopes].reverse()) {
          if (--scope.pending === 0 && scope !== root) for (const hook of scope.afterAll) await hook();
        }
      }
    },
  });
}

function format(template: string, row: unknown, index: number): string {
  const args = Array.isArray(row) ? [...row] : [row];
  let name = template.replace(/%[sdifjoO#%]/g, (token) => {
    if (token === "%%") return "%";
    if (token === "%#") return String(index);
    const value = args.shift();
    if (token === "%d" || token === "%i") return String(Number(value));
    if (token === "%f") return String(Number(value));
    if (token === "%j" || token === "%o" || token === "%O") return stringify(value);
    return typeof value === "string" ? value : stringify(value);
  });
  if (row !== null && typeof row === "object" && !Array.isArray(row)) {
    name = name.replace(/\$([A-Za-z_][\w.]*)/g, (_, path: string) => {
      let value: unknown = row;
      for (const key of path.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
      return typeof value === "string" ? value : stringify(value);
    });
  }
  return name;
}

function stringify(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

function eachOf(mode: "run" | "skip" | "only"): Each {
  return (table) => (name, fn) =>
    table.forEach((row, index) => {
      const args = Array.isArray(row) ? row : [row];
      register(format(name, row, index), () => (fn as (...a: unknown[]) => unknown)(...args), mode);
    });
}

interface TestApi {
  (name: string, fn?: Fn, timeout?: number): void;
  each: Each;
  skip: ((name: string, fn?: Fn) => void) & { each: Each };
  only: ((name: string, fn?: Fn) => void) & { each: Each };
  todo: (name: string) => void;
  skipIf: (condition: unknown) => (name: string, fn?: Fn) => void;
  runIf: (condition: unknown) => (name: string, fn?: Fn) => void;
}

function makeTest(): TestApi {
  const test = ((name: string, fn?: Fn) => register(name, fn, "run")) as TestApi;
  test.each = eachOf("run");
  test.skip = Object.assign((name: string, fn?: Fn) => register(name, fn, "skip"), { each: eachOf("skip") });
  test.only = Object.assign((name: string, fn?: Fn) => register(name, fn, "only"), { each: eachOf("only") });
  test.todo = (name: string) => register(name, undefined, "skip");
  test.skipIf = (condition) => (name, fn) => register(name, fn, condition ? "skip" : "run");
  test.runIf = (condition) => (name, fn) => register(name, fn, condition ? "run" : "skip");
  return test;
}

export const it: TestApi = makeTest();
export const test: TestApi = it;

interface DescribeApi {
  (name: string, fn: () => void): void;
  each: (table: readonly unknown[]) => (name: string, fn: (...args: never[]) => void) => void;
  skip: (name: string, fn: () => void) => void;
  only: (name: string, fn: () => void) => void;
}

function runDescribe(name: string, fn: () => void): void {
  const scope: Scope = { name, parent: current, beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], ranBeforeAll: false, pending: 0 };
  current = scope;
  try {
    fn();
  } finally {
    current = scope.parent!;
  }
}

export const describe: DescribeApi = Object.assign(runDescribe, {
  each: (table: readonly unknown[]) => (name: string, fn: (...args: never[]) => void) =>
    table.forEach((row, index) => runDescribe(format(name, row, index), () => (fn as (...a: unknown[]) => void)(...(Array.isArray(row) ? row : [row])))),
  skip: (name: string, _fn: () => void) => register(name, undefined, "skip"),
  only: (name: string, fn: () => void) => runDescribe(name, fn),
});

export const beforeAll = (fn: Fn): void => void current.beforeAll.push(fn);
export const afterAll = (fn: Fn): void => {
  current.afterAll.push(fn);
  if (current === root) globalThis.addEventListener?.("unload", () => void fn());
};
export const beforeEach = (fn: Fn): void => void current.beforeEach.push(fn);
export const afterEach = (fn: Fn): void => void current.afterEach.push(fn);

// jest's expect, typed loosely: the test files are type-checked by tsc against vitest's real types.
export const expect = jestExpect as unknown as typeof import("vitest").expect;
