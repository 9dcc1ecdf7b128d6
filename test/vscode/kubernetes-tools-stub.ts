/**
 * A stand-in for the Kubernetes extension (ms-kubernetes-tools.vscode-kubernetes-tools), packed as a .vsix: its
 * API broker offers configuration v1_1 (a fixed kubeconfig path, context changes fired by a command) and
 * clusterexplorer v1 (registered node contributors are dumped to a JSON file by another command).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createVSIX } from "@vscode/vsce";

export const USE_CONTEXT_TITLE = "Stub Kubernetes: use context";
export const DUMP_TITLE = "Stub Kubernetes: dump Pod network";

export async function packKubernetesToolsStub(dir: string, options: { kubeconfig: string; switchTo: string; dump: string }): Promise<string> {
  const root = join(dir, "kubernetes-tools-stub");
  mkdirSync(root, { recursive: true });
  writeFileSync(
    join(root, "package.json"),
    JSON.stringify({
      name: "vscode-kubernetes-tools",
      publisher: "ms-kubernetes-tools",
      displayName: "Kubernetes (test stand-in)",
      version: "1.3.99",
      license: "MIT",
      engines: { vscode: "^1.100.0" },
      main: "./extension.js",
      activationEvents: [],
      contributes: {
        commands: [
          { command: "stubKubernetes.useContext", title: `${USE_CONTEXT_TITLE} ${options.switchTo}` },
          { command: "stubKubernetes.dump", title: DUMP_TITLE },
        ],
      },
    }),
  );
  writeFileSync(join(root, "README.md"), "A test stand-in for the Kubernetes extension's API.\n");
  writeFileSync(join(root, ".vscodeignore"), "*.vsix\n");
  writeFileSync(
    join(root, "extension.js"),
    `const vscode = require("vscode");
const fs = require("fs");
const KUBECONFIG = ${JSON.stringify(options.kubeconfig)};
const SWITCH_TO = ${JSON.stringify(options.switchTo)};
const DUMP = ${JSON.stringify(options.dump)};
exports.activate = (context) => {
  const contextChanged = new vscode.EventEmitter();
  const pathChanged = new vscode.EventEmitter();
  const contributors = [];
  const label = (item) => (typeof item.label === "string" ? item.label : item.label && item.label.label);
  const tree = async (node, depth) => {
    const item = node.getTreeItem();
    const children = depth > 0 && item.collapsibleState ? await node.getChildren() : [];
    return { label: label(item), command: item.command && item.command.command, children: await Promise.all(children.map((c) => tree(c, depth - 1))) };
  };
  context.subscriptions.push(
    vscode.commands.registerCommand("stubKubernetes.useContext", () => contextChanged.fire(SWITCH_TO)),
    vscode.commands.registerCommand("stubKubernetes.dump", async () => {
      const parent = { nodeType: "context", name: SWITCH_TO };
      const out = [];
      for (const c of contributors) if (c.contributesChildren(parent)) for (const n of await c.getChildren(parent)) out.push(await tree(n, 3));
      fs.writeFileSync(DUMP, JSON.stringify(out));
    }),
  );
  const apis = {
    "configuration/v1_1": { getKubeconfigPath: () => ({ pathType: "host", hostPath: KUBECONFIG }), onDidChangeKubeconfigPath: pathChanged.event, onDidChangeContext: contextChanged.event },
    "clusterexplorer/v1": { registerNodeContributor: (c) => contributors.push(c), refresh: () => {}, resolveCommandTarget: () => undefined },
  };
  return { get: (component, version) => (apis[component + "/" + version] ? { available: true, api: apis[component + "/" + version] } : { available: false, reason: "version-unknown" }) };
};
`,
  );
  const packagePath = join(dir, "kubernetes-tools-stub.vsix");
  await createVSIX({ cwd: root, packagePath, dependencies: false, allowMissingRepository: true, skipLicense: true });
  return packagePath;
}
