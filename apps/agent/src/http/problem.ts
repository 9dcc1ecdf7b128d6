import type { ServerResponse } from "node:http";

/**
 * Answers with an RFC 9457 problem body; `title` is a short summary (the agent's API) or an error code (`ERR_...`,
 * the probe responder). Once the head is sent, only ends the response.
 */
export function sendProblem(res: ServerResponse, status: number, title: string, detail?: string, extra: Record<string, unknown> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify({ type: "about:blank", title, status, ...(detail === undefined ? {} : { detail }), ...extra }) + "\n";
  res.writeHead(status, { "content-type": "application/problem+json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
