/** "Bring up the lab": `flatnet lab up` in a terminal, with sudo unless VS Code runs as root. */
import * as vscode from "vscode";
import type { FlatnetContext } from "../flatnet-context.ts";
import { shellLine } from "../probe/find-cli.ts";

export async function labUp(context: FlatnetContext): Promise<void> {
  const command = context.cliSetting ?? ["flatnet"];
  const uid = process.getuid?.();
  const terminal = vscode.window.createTerminal({ name: "flatnet lab" });
  terminal.show();
  const stateDir = context.settings["lab.stateDir"];
  terminal.sendText(shellLine([...(uid === 0 ? [] : ["sudo"]), ...command, "lab", "up", "--prefix", context.settings["lab.prefix"], "--state-dir", stateDir]));
}
