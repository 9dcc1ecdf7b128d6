/** "Copy IP" on a tree item (a pick when it has several), and the copy the webview asks for. */
import * as vscode from "vscode";
import type { TreeNode } from "../model/tree.ts";

export async function copyIp(node?: TreeNode): Promise<void> {
  const ips = node?.ips ?? [];
  const ip = ips.length > 1 ? await vscode.window.showQuickPick(ips, { title: "Copy which IP?" }) : ips[0];
  if (ip) await copyText(ip);
}

export async function copyText(text: string): Promise<void> {
  await vscode.env.clipboard.writeText(text);
  vscode.window.setStatusBarMessage(`Copied ${text}`, 3000);
}
