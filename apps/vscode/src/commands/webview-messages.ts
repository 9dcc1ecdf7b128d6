/** What a panel's validated message asks for, done by the same code as the matching command. */
import type { FlatnetContext } from "../flatnet-context.ts";
import type { WebviewPanelHost } from "../panels/webview-panel.ts";
import type { WebviewMessage } from "../protocol.ts";
import { verify } from "../verify.ts";
import { copyText } from "./copy-ip.ts";
import { openReport } from "./open-report.ts";
import { showPairPath } from "./show-pair-path.ts";

export function onWebviewMessage(context: FlatnetContext, message: WebviewMessage, host: WebviewPanelHost): void {
  switch (message.type) {
    case "verify":
      void verify(context);
      break;
    case "probe-pair":
      void verify(context, undefined, { src: message.src.node, dst: message.dst.node });
      break;
    case "copy":
      void copyText(message.text);
      break;
    case "open-report":
      void openReport(context);
      break;
    case "show-path":
      showPairPath(context, message.pairId);
      break;
    case "rendered":
      context.output.debug(`${host.view} rendered in ${message.ms.toFixed(1)} ms`);
      break;
    case "ready":
      break;
  }
}
