import type { V1Node } from "@kubernetes/client-node";
import { type ClusterSnapshot, computeNodeNetwork, type NetworkOptions, type NodeSnapshot, DEFAULT_ANNOTATION_PREFIX, nodeSnapshotFromKube } from "@flatnet/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseNodeRecord } from "./etcd-datastore.ts";
import { hostSetupFor } from "../reconcile/host-setup.ts";

// Fuzz of the datastore values peers control (issue 14): Kubernetes Node objects (annotations, spec, addresses) and
// etcd node values. Whatever a peer writes: no throw, and a peer the model cannot use is skipped with a reason,
// never programmed, and never reaches the masquerade exemptions.

const OPTIONS: NetworkOptions = { backend: "vxlan", vni: 1, vxlanPort: 8472, underlayDevice: "eth0", underlayMtu: 1500, underlaySubnets: ["172.31.0.0/24"], vxlanDevice: "flatnet.1" };
const SELF: NodeSnapshot = { name: "self", underlayIps: ["172.31.0.10"], podCidrs: ["10.244.0.0/24"], vtepMac: "0e:00:00:00:00:01" };

// Strings that are almost addresses, CIDRs and MACs, as a peer (or a typo) would write them.
const addressish = fc.oneof(fc.ipV4(), fc.ipV6(), fc.string(), fc.constantFrom("8.8.8.8,1.1.1.1", "172.31.0.11, 172.31.0.11", "10.244.1.0/24", "::ffff:127.0.0.1", "0.0.0.0", "255.255.255.255", ""));
const cidrish = fc.oneof(fc.tuple(fc.ipV4(), fc.integer({ min: -1, max: 40 })).map(([ip, p]) => `${ip}/${p}`), fc.constantFrom("10.244.1.0/24", "10.244.0.0/16", "0.0.0.0/0", "fd00::/64", "10.244.1.5/24"), fc.string());
const kubeNode: fc.Arbitrary<V1Node> = fc.record({
  metadata: fc.record({
    name: fc.oneof(fc.string(), fc.constantFrom("self", "peer", "")),
    annotations: fc.dictionary(fc.constantFrom(`${DEFAULT_ANNOTATION_PREFIX}underlay-ips`, `${DEFAULT_ANNOTATION_PREFIX}vtep-mac`, `${DEFAULT_ANNOTATION_PREFIX}underlay-mtu`, "other"), addressish),
  }, { requiredKeys: [] }),
  spec: fc.record({ podCIDR: cidrish, podCIDRs: fc.array(cidrish, { maxLength: 3 }) }, { requiredKeys: [] }),
  status: fc.record({
    addresses: fc.array(fc.record({ type: fc.constantFrom("InternalIP", "ExternalIP", "Hostname"), address: addressish }), { maxLength: 3 }),
    conditions: fc.array(fc.record({ type: fc.constantFrom("Ready", "DiskPressure"), status: fc.constantFrom("True", "False", "Unknown") }), { maxLength: 2 }),
  }, { requiredKeys: [] }),
}, { requiredKeys: [] }) as fc.Arbitrary<V1Node>;

function checkModel(peers: NodeSnapshot[]): void {
  const cluster: ClusterSnapshot = { clusterCidrs: ["10.244.0.0/16"], nodes: [SELF, ...peers] };
  const desired = computeNodeNetwork(cluster, "self", OPTIONS);
  if (!desired.success) throw new Error(`self was valid, yet: ${desired.error.message}`);
  const programmed = new Set(desired.data.peers.map((p) => p.node));
  // Every peer is programmed or skipped with a reason (a duplicate of self's name counts as skipped).
  for (const peer of peers) expect(programmed.has(peer.name) || desired.data.skipped.some((s) => s.node === peer.name)).toBe(true);
  const exempt = hostSetupFor(cluster, desired.data, true).nodeIps ?? [];
  const allowed = new Set([...SELF.underlayIps, ...peers.filter((p) => programmed.has(p.name)).flatMap((p) => p.underlayIps)]);
  for (const ip of exempt) expect(allowed.has(ip), `${ip} exempt from masquerade`).toBe(true);
}

describe("fuzz: datastore values from peers", () => {
  it("Kubernetes Nodes: nodeSnapshotFromKube never throws, and the model programs or skips each peer", () => {
    fc.assert(
      fc.property(fc.array(kubeNode, { maxLength: 6 }), (nodes) => {
        const snapshots = nodes.flatMap((node) => nodeSnapshotFromKube(node, DEFAULT_ANNOTATION_PREFIX).data ?? []);
        checkModel(snapshots);
      }),
      { numRuns: 500 },
    );
  });

  it("etcd values: any bytes are a record or skipped, never a throw; records feed the model safely", () => {
    const record = fc.record({ name: fc.string(), underlayIps: fc.array(addressish, { maxLength: 3 }), podCidrs: fc.array(cidrish, { maxLength: 3 }), vtepMac: fc.string() }, { requiredKeys: [] });
    const value = fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), fc.json().map((t) => Buffer.from(t)), record.map((r) => Buffer.from(JSON.stringify(r))));
    fc.assert(
      fc.property(fc.array(value, { maxLength: 6 }), (values) => {
        const records = values.flatMap((v) => parseNodeRecord({ value: v }) ?? []);
        checkModel(records.map((r) => ({ name: r.name, underlayIps: r.underlayIps, podCidrs: r.podCidrs, vtepMac: r.vtepMac })));
      }),
      { numRuns: 500 },
    );
  });
});
