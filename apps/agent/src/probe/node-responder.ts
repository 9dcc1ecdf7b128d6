import { stat } from "node:fs/promises";
import { nodeEndpointName, type ResponderIdentity } from "@flatnet/core";
import { startResponder, type Responder } from "./responder.ts";

// The node's own probe responder, run inside the agent (issue 6.1): the same responder as in pods, with the
// node as its identity, listening on the node's underlay IPs in the node's (host) network namespace. It answers
// pod -> node probes and dials node -> pod probes from the host network, so a node's own traffic is checked.

/** The control socket of a node's responder, next to the agent's API socket: `/run/flatnet/n1.sock` -> `/run/flatnet/n1.probe.sock`. */
export function nodeProbeSocket(agentSocket: string): string {
  return `${agentSocket.replace(/\.sock$/, "")}.probe.sock`;
}

/** The identity a node's responder reports: `node:<name>`, kind `node`, answering on its underlay IPs. */
export function nodeResponderIdentity(node: string, underlayIps: readonly string[], podCidrs: readonly string[]): ResponderIdentity {
  return { pod: nodeEndpointName(node), kind: "node", node, podIps: [...underlayIps], nodePodCidrs: [...podCidrs], nodeIps: [...underlayIps] };
}

export interface NodeResponderOptions {
  /** The network namespace the agent programs (a name in /run/netns); the responder runs only if this process is in it. */
  netns: string;
  node: string;
  underlayIps: readonly string[];
  podCidrs: readonly string[];
  port: number;
  controlSocket?: string;
}

/**
 * Whether this process runs in the named network namespace (same nsfs inode as `/run/netns/<netns>`). A node's
 * responder listens on real sockets: an agent started outside its node's namespace (tests that program a
 * namespace from the root one) must not open them in the wrong one.
 */
export async function runsInNetns(netns: string): Promise<boolean> {
  try {
    const [self, named] = await Promise.all([stat("/proc/self/ns/net"), stat(`/run/netns/${netns}`)]);
    return self.ino === named.ino && self.dev === named.dev;
  } catch {
    return false;
  }
}

/**
 * Start the node's responder; resolves with undefined and the reason when it cannot run here (wrong namespace,
 * no underlay IP, port taken), so the agent keeps working without it.
 */
export async function startNodeResponder(options: NodeResponderOptions): Promise<{ responder?: Responder; reason?: string }> {
  if (options.underlayIps.length === 0) return { reason: "the node has no underlay IP to listen on" };
  if (!(await runsInNetns(options.netns))) {
    return { reason: `this process does not run in network namespace "${options.netns}" (start the agent inside it, e.g. ip netns exec)` };
  }
  try {
    const responder = await startResponder({
      identity: nodeResponderIdentity(options.node, options.underlayIps, options.podCidrs),
      port: options.port,
      listenAddresses: [...options.underlayIps],
      ...(options.controlSocket === undefined ? {} : { controlSocket: options.controlSocket }),
    });
    return { responder };
  } catch (error) {
    return { reason: `cannot listen on port ${options.port} of ${options.underlayIps.join(", ")}: ${(error as Error).message}` };
  }
}
