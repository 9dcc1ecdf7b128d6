/** Entry point: activation only. Everything the extension creates is owned by FlatnetContext. */
import type * as vscode from "vscode";
import { FlatnetContext } from "./flatnet-context.ts";

export function activate(extension: vscode.ExtensionContext): { context: FlatnetContext } {
  const context = new FlatnetContext(extension);
  extension.subscriptions.push(context);
  context.start();
  return { context };
}

export function deactivate(): void {}
