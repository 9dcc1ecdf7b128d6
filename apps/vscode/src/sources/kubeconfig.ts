/**
 * Kubeconfig discovery as VS Code Kubernetes Tools does it: an explicit setting wins, else every file in
 * KUBECONFIG (path-delimiter separated) merged in order, keeping the first file's current-context, else
 * ~/.kube/config.
 */
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export function kubeconfigPaths(setting: readonly string[], env: string | undefined, home: string, separator = delimiter): string[] {
  if (setting.length > 0) return [...setting];
  const fromEnv = (env ?? "").split(separator).map((p) => p.trim()).filter(Boolean);
  if (fromEnv.length > 0) return fromEnv;
  return [join(home, ".kube", "config")];
}

export interface LoadedKubeConfig {
  config: KubeConfig;
  /** Files that exist but could not be read, each with the reason. Missing files are skipped quietly. */
  errors: string[];
  loaded: string[];
}

export function loadKubeConfig(paths: readonly string[]): LoadedKubeConfig {
  const config = new KubeConfig();
  const errors: string[] = [];
  const loaded: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) continue;
    try {
      const next = new KubeConfig();
      next.loadFromFile(path);
      if (loaded.length === 0) config.loadFromFile(path);
      else config.mergeConfig(next, true);
      loaded.push(path);
    } catch (error) {
      errors.push(`kubeconfig "${path}" cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { config, errors, loaded };
}
