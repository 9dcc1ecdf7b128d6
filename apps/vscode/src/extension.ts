/** Entry point: activation only. Everything the extension creates is owned by FlatnetContext. */
import * as vscode from "vscode";
import { copyIp } from "./commands/copy-ip.ts";
import { labUp } from "./commands/lab-up.ts";
import { openReport } from "./commands/open-report.ts";
import { podTerminal } from "./commands/pod-terminal.ts";
import { probeFrom } from "./commands/probe-from.ts";
import { showPairPath } from "./commands/show-pair-path.ts";
import { onWebviewMessage } from "./commands/webview-messages.ts";
import { FlatnetContext } from "./flatnet-context.ts";
import type { TreeNode } from "./model/tree.ts";
import { cancelVerify, verify } from "./verify.ts";

export function activate(extension: vscode.ExtensionContext): { context: FlatnetContext } {
  const context: FlatnetContext = new FlatnetContext(extension, (message, host) => onWebviewMessage(context, message, host));
  extension.subscriptions.push(context);
  const commands: Record<string, (node?: TreeNode) => unknown> = {
    "flatnet.refresh": () => context.restartSources(),
    "flatnet.verify": (node) => verify(context, node?.clusterId),
    "flatnet.probeFrom": (node) => probeFrom(context, node),
    "flatnet.copyIp": (node) => copyIp(node),
    "flatnet.openReport": (node) => openReport(context, node?.clusterId),
    "flatnet.showTopology": (node) => context.showPanel("topology", node?.clusterId),
    "flatnet.showMatrix": (node) => context.showPanel("matrix", node?.clusterId),
    "flatnet.showPairPath": (node) => node?.pairId && showPairPath(context, node.pairId, node.clusterId),
    "flatnet.cancelVerify": () => cancelVerify(context),
    "flatnet.podTerminal": (node) => podTerminal(context, node),
    "flatnet.labUp": () => labUp(context),
  };
  for (const [id, run] of Object.entries(commands)) context.track(vscode.commands.registerCommand(id, run));
  context.start();
  return { context };
}

export function deactivate(): void {}
