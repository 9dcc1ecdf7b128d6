import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeNodeNetwork } from "./compute.ts";
import { applyPlan, diffNetwork, isUnicastMac, sortKernelState } from "./diff.ts";
import type { ClusterSnapshot, DesiredNetwork, FdbEntry, KernelState, NetworkOptions, Neighbour, NodeSnapshot, PlanStep, Route, VxlanDevice } from "./types.ts";

// Small pools so random clusters collide: shared CIDRs, shared MACs, junk values, nodes off this L2 segment.
const NAMES = ["node-1", "node-2", "node-3", "node-4", "node-5", "node-6"];
const V4_UNDERLAY = ["172.31.0.11", "172.31.0.12", "172.31.0.13", "172.31.1.21", "172.31.1.22", "172.31.0.10", "172.31.0.300"];
const V6_UNDERLAY = ["fd00::11", "fd00::12", "fd00:1::21", "fd00::zz"];
const V4_PODS = ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24", "10.244.4.0/24", "10.244.2.0/23", "10.99.0.0/24", "10.244.5.1/24", "10.244.0.128/25"];
const V6_PODS = ["fd00:10:244:1::/64", "fd00:10:244:2::/64", "fd00:10:244:3::/64", "fd00:10:244::/62", "fd00:99::/64"];
const MACS = ["0a:00:00:00:00:01", "0a:00:00:00:00:02", "0a:00:00:00:00:03", "0A:00:00:00:00:04", "01:00:5e:00:00:01", "junk"];
const DEVICES = ["flatnet.1", "flatnet.2"];

const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);
const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
const listOf = (...items: (string | undefined)[]) => items.filter((item): item is string => item !== undefined);

const nodeArbitrary: fc.Arbitrary<NodeSnapshot> = fc
  .record({
    name: pick(NAMES),
    v4: maybe(pick(V4_UNDERLAY)),
    v6: maybe(pick(V6_UNDERLAY)),
    pod4: maybe(pick(V4_PODS)),
    pod6: maybe(pick(V6_PODS)),
    mac: maybe(pick(MACS)),
    ready: fc.boolean(),
  })
  .map(({ name, v4, v6, pod4, pod6, mac, ready }) => {
    const node: NodeSnapshot = { name, underlayIps: listOf(v4, v6), podCidrs: listOf(pod4, pod6), ready };
    if (mac !== undefined) node.vtepMac = mac;
    return node;
  });

const selfArbitrary: fc.Arbitrary<NodeSnapshot> = fc.record({ ipv6Underlay: fc.boolean(), dualStack: fc.boolean() }).map(({ ipv6Underlay, dualStack }) => ({
  name: "self",
  underlayIps: ipv6Underlay ? ["fd00::10", "172.31.0.10"] : ["172.31.0.10"],
  podCidrs: dualStack ? ["10.244.0.0/25", "fd00:10:244:4::/64"] : ["10.244.0.0/25"],
}));

const clusterArbitrary: fc.Arbitrary<ClusterSnapshot> = fc
  .tuple(selfArbitrary, fc.array(nodeArbitrary, { maxLength: 7 }))
  .map(([self, peers]) => ({ clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], nodes: [...peers, self] }));

const optionsArbitrary: fc.Arbitrary<NetworkOptions> = fc.record({
  backend: pick(["host-gw", "vxlan", "auto"] as const),
  vni: pick([1, 2]),
  vxlanPort: pick([8472, 4789]),
  underlayDevice: pick(["eth0", "eth1"]),
  underlayMtu: pick([1500, 9000]),
  underlaySubnets: fc.subarray(["172.31.0.0/24", "fd00::/64"]),
  vxlanDevice: pick(DEVICES),
});

const deviceArbitrary: fc.Arbitrary<VxlanDevice> = fc.record({
  name: pick(DEVICES),
  vni: pick([1, 2]),
  port: pick([8472, 4789]),
  local: pick(["172.31.0.10", "fd00::10"]),
  underlayFamily: pick(["IPv4", "IPv6"] as const),
  underlayDevice: pick(["eth0", "eth1"]),
  mac: pick(["0a:00:00:00:00:01", "16:e3:91:2d:58:86"]),
  mtu: pick([1450, 1430, 8950]),
  addresses: fc.subarray(["10.244.0.0/32", "fd00:10:244:4::/128", "10.244.9.0/32"]),
});

const GARBAGE_DST = ["10.244.1.0/24", "10.244.2.0/24", "10.98.0.0/24", "fd00:10:244:1::/64", "fd00:98::/64"];
const GARBAGE_VIA = ["10.244.1.0", "172.31.0.12", "172.31.0.99", "fd00:10:244:1::", "fd00::12"];
const GARBAGE_MAC = ["0a:00:00:00:00:02", "0a:00:00:00:00:09", "00:00:00:00:00:00", "33:33:00:00:00:01"];

function familyOf(text: string): "IPv4" | "IPv6" {
  return text.includes(":") ? "IPv6" : "IPv4";
}

/** A kernel-consistent actual state: a stale computation for another cluster, plus garbage flatnet owns. */
const actualArbitrary: fc.Arbitrary<KernelState> = fc
  .record({
    stale: fc.option(fc.tuple(clusterArbitrary, optionsArbitrary), { nil: undefined }),
    device: maybe(deviceArbitrary),
    routes: fc.array(fc.record({ dst: pick(GARBAGE_DST), via: pick(GARBAGE_VIA), dev: pick(["eth0", ...DEVICES]), onlink: fc.boolean() }), { maxLength: 6 }),
    neighbours: fc.array(fc.record({ ip: pick(GARBAGE_VIA), mac: pick(GARBAGE_MAC) }), { maxLength: 6 }),
    fdb: fc.array(fc.record({ mac: pick(GARBAGE_MAC), dst: pick(GARBAGE_VIA) }), { maxLength: 6 }),
  })
  .map(({ stale, device, routes, neighbours, fdb }) => {
    const base = stale === undefined ? undefined : computeNodeNetwork(stale[0], "self", stale[1]);
    const start: KernelState = base?.success ? kernelOf(base.data) : { routes: [], neighbours: [], fdb: [] };
    const vxlan = start.vxlan ?? device;
    const routeMap = new Map<string, Route>();
    for (const route of [...start.routes, ...routes.map((r) => ({ ...r, family: familyOf(r.dst) }))]) routeMap.set(`${route.family} ${route.dst}`, route);
    const state: KernelState = { routes: [...routeMap.values()], neighbours: [], fdb: [] };
    if (vxlan !== undefined) {
      // Neighbours and FDB rows exist only on an existing device; a unicast MAC has one row per device.
      const neighbourMap = new Map<string, Neighbour>();
      for (const entry of [...start.neighbours, ...neighbours.map((n) => ({ ...n, family: familyOf(n.ip), dev: vxlan.name }))]) {
        if (entry.dev === vxlan.name) neighbourMap.set(entry.ip, entry);
      }
      const fdbMap = new Map<string, FdbEntry>();
      for (const row of [...start.fdb, ...fdb.map((f) => ({ ...f, dev: vxlan.name }))]) {
        if (row.dev === vxlan.name) fdbMap.set(isUnicastMac(row.mac) ? row.mac : `${row.mac} ${row.dst}`, row);
      }
      state.vxlan = vxlan;
      state.neighbours = [...neighbourMap.values()];
      state.fdb = [...fdbMap.values()];
    }
    return state;
  });

function kernelOf(desired: DesiredNetwork): KernelState {
  const state: KernelState = { routes: desired.routes, neighbours: desired.neighbours, fdb: desired.fdb };
  if (desired.vxlan !== undefined) state.vxlan = desired.vxlan;
  return state;
}

const PHASE: Record<string, number> = {
  "create vxlan-device": 0,
  "replace vxlan-device": 0,
  "update vxlan-device": 0,
  "add fdb": 1,
  "replace fdb": 1,
  "add neighbour": 2,
  "replace neighbour": 2,
  "add route": 3,
  "replace route": 3,
  "delete route": 4,
  "delete neighbour": 5,
  "delete fdb": 6,
  "delete vxlan-device": 7,
};

function exists(state: KernelState, step: PlanStep): boolean {
  switch (step.kind) {
    case "route":
      return state.routes.some((route) => route.family === step.route.family && route.dst === step.route.dst);
    case "neighbour":
      return state.neighbours.some((entry) => entry.dev === step.neighbour.dev && entry.ip === step.neighbour.ip);
    case "fdb":
      return state.fdb.some((row) => row.dev === step.fdb.dev && row.mac === step.fdb.mac && row.dst === step.fdb.dst);
    case "vxlan-device":
      return true;
  }
}

describe("diffNetwork / applyPlan properties", () => {
  it("applying the plan to any actual state yields exactly the desired state, and a second diff is empty", () => {
    fc.assert(
      fc.property(clusterArbitrary, optionsArbitrary, actualArbitrary, (cluster, options, actual) => {
        const result = computeNodeNetwork(cluster, "self", options);
        expect(result.error).toBeUndefined();
        const desired = kernelOf(result.data!);
        const plan = diffNetwork(desired, actual);
        const applied = applyPlan(actual, plan);
        expect(sortKernelState(applied)).toEqual(sortKernelState(desired));
        expect(diffNetwork(desired, applied)).toEqual({ steps: [] });
      }),
      { numRuns: 400 },
    );
  });

  it("plans are phase-ordered and delete only objects that exist at that point (a batch never hits ENOENT)", () => {
    fc.assert(
      fc.property(clusterArbitrary, optionsArbitrary, actualArbitrary, (cluster, options, actual) => {
        const desired = kernelOf(computeNodeNetwork(cluster, "self", options).data!);
        const plan = diffNetwork(desired, actual);
        // An IPv6 onlink route moving between devices is deleted and re-added within the route-add phase.
        const phases = plan.steps.map((step, index) => {
          const next = plan.steps[index + 1];
          const moved = step.op === "delete" && step.kind === "route" && next?.kind === "route" && next.op === "add" && next.route.dst === step.route.dst;
          return moved ? PHASE["add route"]! : PHASE[`${step.op} ${step.kind}`]!;
        });
        expect(phases).toEqual([...phases].sort((a, b) => a - b));
        let state = actual;
        for (const step of plan.steps) {
          if (step.op === "delete") expect(exists(state, step)).toBe(true);
          state = applyPlan(state, { steps: [step] });
        }
      }),
      { numRuns: 300 },
    );
  });

  it("desired state is self-consistent for any cluster: one route per dst, one FDB row per MAC, no self routes", () => {
    fc.assert(
      fc.property(clusterArbitrary, optionsArbitrary, (cluster, options) => {
        const desired = computeNodeNetwork(cluster, "self", options).data!;
        const routeKeys = desired.routes.map((route) => `${route.family} ${route.dst}`);
        expect(new Set(routeKeys).size).toBe(routeKeys.length);
        expect(new Set(desired.fdb.map((row) => row.mac)).size).toBe(desired.fdb.length);
        expect(new Set(desired.neighbours.map((entry) => entry.ip)).size).toBe(desired.neighbours.length);
        expect(desired.routes).toHaveLength(desired.peers.length);
        expect(desired.peers.every((peer) => peer.node !== "self")).toBe(true);
        expect(desired.routes.every((route) => !desired.podCidrs.includes(route.dst))).toBe(true);
        for (const route of desired.routes.filter((r) => r.onlink)) {
          expect(desired.neighbours.some((entry) => entry.ip === route.via)).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });
});
