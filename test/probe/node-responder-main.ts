import { startNodeResponder, type NodeResponderOptions } from "../../apps/agent/src/probe/node-responder.ts";

// Runs a node's probe responder the way the agent does (startNodeResponder: namespace check, node identity,
// listening on the underlay IPs only) inside `ip netns exec <node>`, for the node-endpoint tests.
// Argument: NodeResponderOptions as JSON. Prints one ready line, or the reason on stderr and exits 1.

const options = JSON.parse(process.argv[2] ?? "{}") as NodeResponderOptions;
const started = await startNodeResponder(options);
if (started.responder === undefined) {
  process.stderr.write(`node responder not started: ${started.reason}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ ready: true, node: options.node, pid: process.pid })}\n`);
await new Promise<void>((resolve) => {
  process.once("SIGTERM", resolve);
  process.once("SIGINT", resolve);
});
await started.responder.close();
