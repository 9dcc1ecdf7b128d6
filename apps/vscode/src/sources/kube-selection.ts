/**
 * Which kubeconfig files and contexts to show. The Kubernetes extension's choice (its kubeconfig path and the
 * context it switched to) is followed when it is installed; `flatnet.kubeconfig` and `flatnet.contexts`, when
 * set, still win. Pure: the loaded kubeconfig's current context is passed in.
 */
import { kubeconfigPaths } from "./kubeconfig.ts";

export interface KubernetesToolsChoice {
  /** The kubeconfig the Kubernetes extension uses (host path). */
  kubeconfigPath?: string;
  /** The context it switched to, from its last onDidChangeContext; null when it cleared it. */
  context?: string | null;
}

export interface KubeSelectionInput {
  settingPaths: readonly string[];
  settingContexts: readonly string[];
  tools: KubernetesToolsChoice | undefined;
  env: string | undefined;
  home: string;
}

export function selectKubeconfigPaths(input: KubeSelectionInput): string[] {
  if (input.settingPaths.length === 0 && input.tools?.kubeconfigPath) return [input.tools.kubeconfigPath];
  return kubeconfigPaths(input.settingPaths, input.env, input.home);
}

/** The contexts to show: the setting, else the Kubernetes extension's latest, else the file's current-context. */
export function selectContexts(input: KubeSelectionInput, currentContext: string): string[] {
  if (input.settingContexts.length > 0) return [...input.settingContexts];
  const chosen = input.tools?.context;
  if (chosen) return [chosen];
  if (chosen === null) return [];
  return currentContext ? [currentContext] : [];
}
