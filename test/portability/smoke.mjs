// Imports the BUILT @flatnet/core (its package.json exports -> dist) and exercises each layer once.
// Run by smoke.test.ts under Node, Bun and Deno; prints one JSON line that must be identical on all three.
import * as core from "@flatnet/core";

const cluster = core.unwrap(core.ClusterIpam.create({ clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/48"] }));
const node = core.unwrap(cluster.allocate("node-a"));
const pods = core.unwrap(core.NodeIpam.create({ podCidrs: node.podCidrs }));
const pod = core.unwrap(pods.allocate({ containerId: "c1", ifName: "eth0" }));
const bad = core.safeParseCidr("10.0.0.0/33");
let thrown;
try {
  core.parseIp("010.0.0.1");
} catch (error) {
  thrown = { name: error.name, code: error.code, isFlatnetError: core.isFlatnetError(error) };
}

const summary = {
  exports: Object.keys(core).length,
  ip: core.formatIp(core.parseIp("2001:DB8:0:0:0:0:0:1")),
  mapped: core.formatIp(core.unmapIp(core.parseIp("::ffff:10.1.2.3"))),
  split: core.splitCidr(core.parseCidr("10.0.0.0/23"), 24).map(core.formatCidr),
  podCidrs: node.podCidrs,
  podIps: pod.allocation.ips.map((ip) => `${ip.address}/${ip.prefix} via ${ip.gateway}`),
  badCidr: bad.error?.message,
  thrown,
};
console.log(JSON.stringify(summary));
