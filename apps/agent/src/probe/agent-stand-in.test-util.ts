/** A stand-in of the node agent's evidence socket for relay tests: records each request, answers `answer(body)`. */
import { createServer, type Server } from "node:http";

export interface AgentStandIn {
  server: Server;
  received: { url: string; body: unknown }[];
}

export async function startAgentStandIn(socketPath: string, answer: (body: unknown) => unknown): Promise<AgentStandIn> {
  const received: AgentStandIn["received"] = [];
  const server = createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (text += chunk));
    req.on("end", () => {
      const body = JSON.parse(text) as unknown;
      received.push({ url: `${req.method} ${req.url}`, body });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(answer(body)));
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { server, received };
}
