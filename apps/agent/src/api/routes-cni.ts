import { EXIT_CODE_HEADER, RAW_ANSWER, wantsRaw } from "../cni/delegate.ts";
import { type CniCall, createCniService, type CniService, netnsDeclined, parseCniCall } from "../cni/service.ts";
import type { RouteModule } from "./context.ts";
import { ApiProblem, type ApiRoute } from "./server.ts";

// `POST /v1/cni` on the agent's API socket: the CNI plugin's fast path (cni/delegate.ts) served by the agent process
// itself. The plugin binary forwards {env: CNI_*, stdin} and prints the answer {exitCode, stdout}. A CNI failure is a
// 200 with the CNI error JSON in stdout (it is the plugin's answer); only a malformed request is a problem (400).
// The lab and the bench name the agent's CNI worker instead (cni/worker.ts: the same route in a Bun process, where
// an `ip` process costs 0.3 ms to start instead of ~3 ms from the agent's large Node heap); this route serves a
// conflist that names the API socket, and an agent run without the built plugin binary.

/** The CNI routes over a service (tests pass their own); the agent's module builds one service per process. */
export function cniRoutes(service: CniService): ApiRoute[] {
  return [
    {
      method: "POST",
      path: "/v1/cni",
      async handler(request) {
        let call: CniCall;
        try {
          call = parseCniCall(await request.json());
        } catch (error) {
          throw new ApiProblem(400, "Bad Request", (error as Error).message);
        }
        const declined = netnsDeclined(call);
        if (declined !== undefined) throw new ApiProblem(409, "Conflict", declined);
        const response = await service.handle(call.env, call.stdin);
        if (!wantsRaw(request.raw.headers.accept)) return { body: response };
        // The native client's form: the plugin's stdout as is, the exit code in a header (cni/delegate.ts RAW_ANSWER).
        return { text: response.stdout, contentType: RAW_ANSWER, headers: { [EXIT_CODE_HEADER]: String(response.exitCode) } };
      },
    },
  ];
}

let shared: CniService | undefined;

/** The route module for `src/api/modules.ts`: one warm CNI service for the agent process. */
export const cniRouteModule: RouteModule = () => cniRoutes((shared ??= createCniService()));
