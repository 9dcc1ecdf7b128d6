import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_PROBE_PORT, probeAddressFamily, type ResponderIdentity } from "@flatnet/core";
import { parseNetworkConfig } from "../config/network-config.ts";
import { allowedNetworks, PROBE_TOKEN_ENV } from "./dial-policy.ts";
import { startResponder } from "./responder.ts";

/** Arguments of `flatnet probe-responder` (also runnable directly: `node --import tsx responder-cli.ts ...`). */
export const RESPONDER_USAGE =
  "usage: flatnet probe-responder --pod NAME --node NODE [--namespace NS] [--port 7471] --pod-ip IP... [--node-pod-cidr CIDR...] [--node-ip IP...] [--control-socket PATH] [--agent-socket PATH] [--token-file PATH] [--allow-cidr CIDR...] [--net-conf PATH]";

export interface ResponderArgs {
  identity: ResponderIdentity;
  port: number;
  controlSocket?: string;
  /** The node agent's API socket: `POST /v1/evidence` is relayed to it (token-gated like a TCP dial). */
  agentSocket?: string;
  /** Dial over TCP: the orchestrator's token and the networks targets must lie in (responder.ts). */
  dial: { token?: string; allowedCidrs: string[] };
}

/**
 * Parse responder arguments; throws an Error whose message names the bad value and the rule. The probe token comes
 * from `--token-file` or `FLATNET_PROBE_TOKEN` (without one, dials are served on the control socket only); targets of
 * a TCP dial must lie in the `--allow-cidr`s, the `--net-conf` cluster CIDRs, or this node's pod CIDRs and IPs.
 */
export function parseResponderArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ResponderArgs {
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
      "agent-socket": { type: "string" },
      "token-file": { type: "string" },
      "allow-cidr": { type: "string", multiple: true },
      "net-conf": { type: "string" },
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
  const token = values["token-file"] === undefined ? env[PROBE_TOKEN_ENV] : readText(values["token-file"], "--token-file").trim();
  if (token !== undefined && token.length < 16) {
    throw new Error(`the probe token (${values["token-file"] === undefined ? PROBE_TOKEN_ENV : `--token-file "${values["token-file"]}"`}) has ${token.length} characters; at least 16 are required`);
  }
  const clusterCidrs = values["net-conf"] === undefined ? [] : parseNetworkConfig(parseJsonText(readText(values["net-conf"], "--net-conf"), values["net-conf"]), `--net-conf "${values["net-conf"]}"`).clusterCidrs ?? [];
  const allowedCidrs = allowedNetworks([...(values["allow-cidr"] ?? []), ...clusterCidrs, ...(identity.nodePodCidrs ?? []), ...(identity.nodeIps ?? [])]);
  const args: ResponderArgs = { identity, port, dial: token === undefined ? { allowedCidrs } : { token, allowedCidrs } };
  if (values["control-socket"]) args.controlSocket = values["control-socket"];
  if (values["agent-socket"]) args.agentSocket = values["agent-socket"];
  return args;
}

function readText(path: string, option: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`${option} "${path}" cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function parseJsonText(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`--net-conf "${path}" is not JSON: ${(error as Error).message}`);
  }
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
