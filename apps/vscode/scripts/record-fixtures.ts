// Writes the recorded demo fixtures (fixtures/cluster.json, fixtures/run.ndjson): a 4-node cluster with a stray
// pod IP, and a probe run with one NAT violation, one missing route and one MTU black hole.
// Run: npx tsx apps/vscode/scripts/record-fixtures.ts
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeSyntheticCluster, makeSyntheticRun } from "../test-support/synthetic.ts";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");
mkdirSync(join(dir, ".vscode"), { recursive: true });
const cluster = makeSyntheticCluster({ nodes: 4, podsPerNode: 3, name: "recorded-lab" });
cluster.pods.push({ namespace: "default", name: "stray", node: "node-2", ips: ["10.99.0.7"], phase: "Running", hostNetwork: false });
const events = makeSyntheticRun(cluster, [
  { kind: "nat", src: "node-1", dst: "node-2" },
  { kind: "unreachable", src: "node-2", dst: "node-4" },
  { kind: "mtu", src: "node-3", dst: "node-1" },
  { kind: "flaky", src: "node-4", dst: "node-3" },
]);
writeFileSync(join(dir, "cluster.json"), JSON.stringify(cluster, null, 2) + "\n");
writeFileSync(join(dir, "run.ndjson"), events.map((event) => JSON.stringify(event)).join("\n") + "\n");
writeFileSync(
  join(dir, ".vscode", "settings.json"),
  JSON.stringify({ "flatnet.fixture": "cluster.json", "flatnet.probe.replay": "run.ndjson", "flatnet.kubernetes.enabled": false, "flatnet.lab.enabled": false }, null, 2) + "\n",
);
console.log(`wrote ${dir}`);
