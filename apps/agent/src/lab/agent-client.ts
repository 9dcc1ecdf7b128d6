import { request } from "node:http";

export interface AgentResponse {
  status: number;
  body: unknown;
}

/** GET on an agent's HTTP API over its unix socket; rejects when the socket does not answer within the timeout. */
export function getFromAgent(socketPath: string, path: string, timeoutMs = 2_000): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET", timeout: timeoutMs, headers: { accept: "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        let body: unknown = text;
        try {
          body = text === "" ? undefined : JSON.parse(text);
        } catch {
          // a plain-text body stays a string
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${socketPath}${path} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** Like getFromAgent, but any failure becomes `undefined` (an agent that is down is a normal state for the lab). */
export async function tryGetFromAgent(socketPath: string, path: string, timeoutMs?: number): Promise<AgentResponse | undefined> {
  try {
    return await getFromAgent(socketPath, path, timeoutMs);
  } catch {
    return undefined;
  }
}
