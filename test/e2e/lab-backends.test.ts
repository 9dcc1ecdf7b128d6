import { rm } from "node:fs/promises";
import { firstAddress, formatIp, parseCidr } from "@flatnet/core";
import { afterAll, describe, expect, it } from "vitest";
import { labDown, labStatus, labUp } from "../../apps/agent/src/lab/lab.ts";
import { labCheck } from "./pod-checker/pod-checker.ts";
import { listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";
import { describeRoute, flatnetRoutes, isRoot, skipReason, tempStateDir } from "./lab-helpers.ts";

// A 3-node lab per backend and address family: every ordered pod pair reachable over ICMP and TCP with the sender's
// own pod IP seen by the responder, and the routes shaped as the backend says. One lab at a time, torn down after.
const PREFIX = "fn-e3-";
skipReason("lab backend tests");

const combos = [
  ["host-gw", false],
  ["host-gw", true],
  ["vxlan", false],
  ["vxlan", true],
  ["auto", false],
  ["auto", true],
] as const;

describe.skipIf(!isRoot)("flatnet lab: 3 nodes x 2 pods per backend", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await labDown({ stateDir: dir, prefix: PREFIX }).catch(() => {});
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
  });

  it.each(combos)("%s, dual-stack %s: all pairs reachable, no NAT, routes of the backend's shape", async (backend, dualStack) => {
    const stateDir = await tempStateDir(PREFIX);
    dirs.push(stateDir);
    try {
      const state = await labUp({ nodes: 3, podsPerNode: 2, backend, dualStack, prefix: PREFIX, stateDir });
      expect(state.pods).toHaveLength(6);
      const families = dualStack ? 2 : 1;
      for (const pod of state.pods) expect(pod.ips).toHaveLength(families);

      const report = await labCheck({ stateDir });
      expect(report.pairs.filter((pair) => !pair.ok)).toEqual([]);
      expect(report.pairs).toHaveLength(6 * 5 * families);
      for (const pair of report.pairs) expect(pair.sawSource).toBe(pair.expectedSource);

      // node1's routes to node2 (other segment under auto) and node3 (same segment under auto).
      const [node1, node2, node3] = state.nodes;
      const routes = (await flatnetRoutes(node1!.netns)).map(describeRoute).sort();
      const hostGw = (peer: typeof node2) => peer!.podCidrs.map((cidr, i) => `${cidr} via ${peer!.underlayIps[i]} dev eth0`);
      // vxlan: via the peer's VTEP address, the first address of its pod CIDR, on the VXLAN device.
      const vxlan = (peer: typeof node2) => peer!.podCidrs.map((cidr) => `${cidr} via ${formatIp(firstAddress(parseCidr(cidr)))} dev flatnet.1 onlink`);
      const expected = {
        "host-gw": [...hostGw(node2), ...hostGw(node3)],
        vxlan: [...vxlan(node2), ...vxlan(node3)],
        auto: [...vxlan(node2), ...hostGw(node3)],
      }[backend];
      expect(routes).toEqual(expected.sort());

      const status = await labStatus({ stateDir });
      expect(status.nodes.map((node) => [node.name, node.agent.running, node.agent.ready, node.pods.length])).toEqual([
        ["node1", true, true, 2],
        ["node2", true, true, 2],
        ["node3", true, true, 2],
      ]);
    } finally {
      await labDown({ stateDir, prefix: PREFIX });
      await rm(stateDir, { recursive: true, force: true });
    }
    expect(await listLabNamespaces(PREFIX)).toEqual([]);
  }, 120_000);
});
