import { dialResultSchema, type DialRequest, type DialResult, type ProbeEndpoint } from "@flatnet/core";
import { describeEndpoint, ndjsonLines, postJson, problemDetail, readAll, type HttpEndpoint } from "../http/client.ts";
import { PROBE_TOKEN_HEADER } from "./dial-policy.ts";
import type { DialTransport } from "./engine.ts";

/**
 * Dial by talking to each source pod's responder: `POST /v1/dial` on the endpoint `locate` gives for the
 * source (its control socket in the lab, or its pod IP from inside its node).
 */
export function responderTransport(locate: (src: ProbeEndpoint) => HttpEndpoint | undefined, idleTimeoutMs = 30_000, token?: string): DialTransport {
  return {
    dial(src, dialRequest) {
      const endpoint = locate(src);
      if (endpoint === undefined) return failing(`no control endpoint known for ${src.pod} on ${src.node}`);
      return streamDial(endpoint, "/v1/dial", dialRequest, idleTimeout(dialRequest, idleTimeoutMs), token);
    },
  };
}

/**
 * Dial through the source node's agent (`POST /v1/probe/dial`), which relays to its local pod's responder:
 * the probe leaves from the pod's IP, and the client needs to reach only agents. The probe token (if any) is passed
 * to the agent, which presents it to the pod.
 */
export function agentTransport(locateAgent: (node: string) => HttpEndpoint | undefined, idleTimeoutMs = 30_000, token?: string): DialTransport {
  return {
    dial(src, dialRequest) {
      const endpoint = locateAgent(src.node);
      if (endpoint === undefined) return failing(`no agent endpoint known for node ${src.node}`);
      return streamDial(endpoint, "/v1/probe/dial", { src, request: dialRequest }, idleTimeout(dialRequest, idleTimeoutMs), token);
    },
  };
}

// Results stream per target; silence longer than every check's timeouts together means the control path is gone.
function idleTimeout(dialRequest: DialRequest, floor: number): number {
  const o = dialRequest.options;
  return Math.max(floor, o.timeoutMs * (o.tcpCount + o.udpCount + 4) * 2);
}

async function* failing(message: string): AsyncGenerator<DialResult> {
  throw new Error(message);
}

/** POST a JSON body (with the probe token, when given) and yield the NDJSON lines of the answer, validated as DialResults. */
export async function* streamDial(endpoint: HttpEndpoint, path: string, body: unknown, idleMs: number, token?: string): AsyncGenerator<DialResult> {
  const response = await postJson(endpoint, path, body, idleMs, token === undefined ? {} : { [PROBE_TOKEN_HEADER]: token });
  if ((response.statusCode ?? 0) !== 200) {
    const text = await readAll(response);
    throw new Error(`${describeEndpoint(endpoint)}${path} answered HTTP ${response.statusCode}: ${problemDetail(text)}`);
  }
  yield* ndjsonLines(response, (value) => dialResultSchema.parse(value));
}
