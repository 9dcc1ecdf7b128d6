/**
 * Thin adapter to the Kubernetes extension (ms-kubernetes-tools) through its versioned API broker, the
 * contract of the `vscode-kubernetes-tools-api` package: the configuration API (kubeconfig path, context
 * changes) and the Cluster Explorer (a "Pod network" node under each cluster). Only the slice used is typed.
 */
import * as vscode from "vscode";
import type { KubernetesToolsChoice } from "./kube-selection.ts";

export const KUBERNETES_TOOLS_ID = "ms-kubernetes-tools.vscode-kubernetes-tools";

type Api<T> = { available: true; api: T } | { available: false; reason: string };
interface ApiBroker {
  get(component: string, version: string): Api<unknown>;
}
type KubeconfigPath = { pathType: "host"; hostPath: string } | { pathType: "wsl"; wslPath: string };
interface ConfigurationV1_1 {
  getKubeconfigPath(): KubeconfigPath;
  readonly onDidChangeKubeconfigPath: vscode.Event<KubeconfigPath>;
  readonly onDidChangeContext: vscode.Event<string | null>;
}
export type ExplorerParent = { nodeType: string; name?: string } | undefined;
export interface ExplorerNode {
  getChildren(): Promise<ExplorerNode[]>;
  getTreeItem(): vscode.TreeItem;
}
interface ClusterExplorerV1 {
  registerNodeContributor(contributor: { contributesChildren(parent: ExplorerParent): boolean; getChildren(parent: ExplorerParent): Promise<ExplorerNode[]> }): void;
}

export interface KubernetesTools {
  choice: KubernetesToolsChoice;
  explorer: ClusterExplorerV1 | undefined;
  disposables: vscode.Disposable[];
}

const hostPath = (path: KubeconfigPath) => (path.pathType === "host" ? path.hostPath : undefined);

/**
 * Connects when the Kubernetes extension is installed and offers its configuration API; undefined otherwise
 * (the extension then keeps its own kubeconfig loader). `onChange` runs after the choice changed.
 */
export async function connectKubernetesTools(onChange: () => void, log: (line: string) => void): Promise<KubernetesTools | undefined> {
  const extension = vscode.extensions.getExtension<ApiBroker>(KUBERNETES_TOOLS_ID);
  if (!extension) return undefined;
  let broker: ApiBroker;
  try {
    broker = await extension.activate();
  } catch (error) {
    log(`the Kubernetes extension did not activate: ${error instanceof Error ? error.message : String(error)}; using the kubeconfig directly`);
    return undefined;
  }
  const configuration = broker?.get?.("configuration", "v1_1");
  if (!configuration?.available) {
    log(`the Kubernetes extension offers no configuration API v1_1 (${configuration?.available === false ? configuration.reason : "no API broker"}); using the kubeconfig directly`);
    return undefined;
  }
  const api = configuration.api as ConfigurationV1_1;
  const path = hostPath(api.getKubeconfigPath());
  const tools: KubernetesTools = { choice: path ? { kubeconfigPath: path } : {}, explorer: undefined, disposables: [] };
  tools.disposables.push(
    api.onDidChangeKubeconfigPath((next) => {
      const p = hostPath(next);
      if (p) tools.choice = { ...tools.choice, kubeconfigPath: p };
      else delete tools.choice.kubeconfigPath;
      onChange();
    }),
    api.onDidChangeContext((context) => {
      tools.choice = { ...tools.choice, context };
      onChange();
    }),
  );
  const explorer = broker.get("clusterexplorer", "v1");
  if (explorer.available) tools.explorer = explorer.api as ClusterExplorerV1;
  return tools;
}
