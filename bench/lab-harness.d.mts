// Types of lab-harness.mjs, for the TypeScript benches that share it.
export interface BenchRow {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  target: string;
  pass: boolean;
}
export const root: string;
export const flatnetMain: string;
export function flatnet(args: readonly string[], options?: { quiet?: boolean }): { stdout: string; ms: number };
export function run(command: string, args: readonly string[], options?: object): string;
export function startInNetns(netns: string, command: string, args: readonly string[]): { pid: number | undefined; stop(): Promise<void> };
export function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
export const median: (values: readonly number[]) => number;
export const percentile: (values: readonly number[], p: number) => number;
export function report(name: string, rows: readonly BenchRow[]): void;
export const isRoot: () => boolean;
