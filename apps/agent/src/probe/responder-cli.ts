import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_PROBE_PORT, probeAddressFamily, type ResponderIdentity } from "@flatnet/core";
import { startResponder } from "./responder.ts";

/** Arguments of `flatnet probe-responder` (also runnable directly: `node --import tsx responder-cli.ts ...`). */
export const RESPONDER_USAGE =
  "usage: flatnet probe-responder --pod NAME --node NODE [--namespace NS] [--port 7471] --pod-ip IP... [--node-pod-cidr CIDR...] [--node-ip IP...] [--control-socket PATH]";

export interface ResponderArgs {
  identity: ResponderIdentity;
  port: number;
  controlSocket?: string;
}

/** Parse responder arguments; throws an Error whose message names the bad value and the rule. */
export function parseResponderArgs(argv: string[]): ResponderArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      pod: { type: "string" },
      node: { type: "string" },
      namespace: { type: "string" },
      port: { type: "string" },
      "pod-ip": { type: "string", multiple: true },
      "node-pod-cidr": { type: "string", multiple: true },
      "node-ip": { type: "string", multiple: true },
      "control-socket": { type: "string" },
    },
    strict: true,
  });
  if (!values.pod) throw new Error(`--pod is required; ${RESPONDER_USAGE}`);
  if (!values.node) throw new Error(`--node is required; ${RESPONDER_USAGE}`);
  const port = values.port === undefined ? DEFAULT_PROBE_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port "${values.port}" must be an integer in 1-65535`);
  const podIps = values["pod-ip"] ?? [];
  for (const ip of [...podIps, ...(values["node-ip"] ?? [])]) {
    if (probeAddressFamily(ip) === undefined) throw new Error(`address "${ip}" is not an IPv4 or IPv6 address`);
  }
  const identity: ResponderIdentity = {
    pod: values.pod,
    node: values.node,
    podIps,
    nodePodCidrs: values["node-pod-cidr"] ?? [],
    nodeIps: values["node-ip"] ?? [],
  };
  if (values.namespace) identity.namespace = values.namespace;
  const args: ResponderArgs = { identity, port };
  if (values["control-socket"]) args.controlSocket = values["control-socket"];
  return args;
}

/** Run a responder until SIGTERM/SIGINT; prints one JSON line `{"ready":true,...}` on stdout once listening. */
export async function runResponder(argv: string[]): Promise<void> {
  let args: ResponderArgs;
  try {
    args = parseResponderArgs(argv);
  } catch (error) {
    process.stderr.write(`flatnet probe-responder: ${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  let responder;
  try {
    responder = await startResponder(args);
  } catch (error) {
    process.stderr.write(`flatnet probe-responder: cannot listen on port ${args.port}: ${(error as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${JSON.stringify({ ready: true, pod: args.identity.pod, port: responder.port, pid: process.pid })}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await responder.close();
}

// Direct run from source only (tests); inside the dist/main.js bundle import.meta.url is main.js's.
if (import.meta.url.endsWith("/probe/responder-cli.ts") && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runResponder(process.argv.slice(2));
}
