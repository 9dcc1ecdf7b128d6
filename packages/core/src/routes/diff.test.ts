import { describe, expect, it } from "vitest";
import { applyPlan, diffNetwork, sortKernelState } from "./diff.ts";
import type { FdbEntry, KernelState, Neighbour, Plan, Route, VxlanDevice } from "./types.ts";

const VX = "flatnet.1";
const MAC2 = "0a:00:00:00:00:02";
const MAC2B = "0a:00:00:00:00:22";
const MAC3 = "0a:00:00:00:00:03";

const device: VxlanDevice = {
  name: VX,
  vni: 1,
  port: 8472,
  local: "172.31.0.11",
  underlayFamily: "IPv4",
  underlayDevice: "eth0",
  mac: "0a:00:00:00:00:01",
  mtu: 1450,
  addresses: ["10.244.1.0/32"],
};
const route = (dst: string, via: string, dev = VX): Route => ({ family: dst.includes(":") ? "IPv6" : "IPv4", dst, via, dev, onlink: dev === VX });
const neigh = (ip: string, mac: string, dev = VX): Neighbour => ({ family: ip.includes(":") ? "IPv6" : "IPv4", ip, mac, dev });
const fdb = (mac: string, dst: string, dev = VX): FdbEntry => ({ mac, dst, dev });
const empty: KernelState = { routes: [], neighbours: [], fdb: [] };

// node-1's view of node-2 (172.31.0.12, 10.244.2.0/24) and node-3 (172.31.1.13, 10.244.3.0/24) over vxlan.
const twoPeers: KernelState = {
  vxlan: device,
  routes: [route("10.244.2.0/24", "10.244.2.0"), route("10.244.3.0/24", "10.244.3.0")],
  neighbours: [neigh("10.244.2.0", MAC2), neigh("10.244.3.0", MAC3)],
  fdb: [fdb(MAC2, "172.31.0.12"), fdb(MAC3, "172.31.1.13")],
};

describe("diffNetwork", () => {
  it("from nothing: device, then FDB and neighbours, then routes", () => {
    expect(diffNetwork(twoPeers, empty)).toEqual({
      steps: [
        { op: "create", kind: "vxlan-device", device },
        { op: "add", kind: "fdb", fdb: fdb(MAC2, "172.31.0.12") },
        { op: "add", kind: "fdb", fdb: fdb(MAC3, "172.31.1.13") },
        { op: "add", kind: "neighbour", neighbour: neigh("10.244.2.0", MAC2) },
        { op: "add", kind: "neighbour", neighbour: neigh("10.244.3.0", MAC3) },
        { op: "add", kind: "route", route: route("10.244.2.0/24", "10.244.2.0") },
        { op: "add", kind: "route", route: route("10.244.3.0/24", "10.244.3.0") },
      ],
    });
  });

  it("in sync: no steps", () => {
    expect(diffNetwork(twoPeers, sortKernelState(twoPeers))).toEqual({ steps: [] });
  });

  it("a peer leaves: route first, then neighbour, then FDB row", () => {
    const desired = { ...twoPeers, routes: [twoPeers.routes[0]!], neighbours: [twoPeers.neighbours[0]!], fdb: [twoPeers.fdb[0]!] };
    expect(diffNetwork(desired, twoPeers)).toEqual({
      steps: [
        { op: "delete", kind: "route", route: route("10.244.3.0/24", "10.244.3.0") },
        { op: "delete", kind: "neighbour", neighbour: neigh("10.244.3.0", MAC3) },
        { op: "delete", kind: "fdb", fdb: fdb(MAC3, "172.31.1.13") },
      ],
    });
  });

  it("a peer's VTEP MAC changes: new FDB row, neighbour replaced, old FDB row deleted", () => {
    const desired = { ...twoPeers, neighbours: [neigh("10.244.2.0", MAC2B), twoPeers.neighbours[1]!], fdb: [fdb(MAC2B, "172.31.0.12"), twoPeers.fdb[1]!] };
    expect(diffNetwork(desired, twoPeers)).toEqual({
      steps: [
        { op: "add", kind: "fdb", fdb: fdb(MAC2B, "172.31.0.12") },
        { op: "replace", kind: "neighbour", neighbour: neigh("10.244.2.0", MAC2B) },
        { op: "delete", kind: "fdb", fdb: fdb(MAC2, "172.31.0.12") },
      ],
    });
  });

  it("a vxlan peer's underlay IP changes: its FDB row is replaced in place (the old row goes with it)", () => {
    const desired = { ...twoPeers, fdb: [fdb(MAC2, "172.31.0.99"), twoPeers.fdb[1]!] };
    const plan = diffNetwork(desired, twoPeers);
    expect(plan).toEqual({ steps: [{ op: "replace", kind: "fdb", fdb: fdb(MAC2, "172.31.0.99") }] });
    expect(sortKernelState(applyPlan(twoPeers, plan)).fdb).toEqual([fdb(MAC2, "172.31.0.99"), fdb(MAC3, "172.31.1.13")]);
  });

  it("a host-gw peer's underlay IP changes: its route is replaced", () => {
    const actual: KernelState = { routes: [route("10.244.2.0/24", "172.31.0.12", "eth0")], neighbours: [], fdb: [] };
    const desired: KernelState = { routes: [route("10.244.2.0/24", "172.31.0.99", "eth0")], neighbours: [], fdb: [] };
    expect(diffNetwork(desired, actual)).toEqual({ steps: [{ op: "replace", kind: "route", route: route("10.244.2.0/24", "172.31.0.99", "eth0") }] });
  });

  it("a peer moves off this L2 segment (auto): FDB and neighbour added before its route is replaced", () => {
    const actual: KernelState = { vxlan: device, routes: [route("10.244.2.0/24", "172.31.0.12", "eth0")], neighbours: [], fdb: [] };
    const desired: KernelState = { vxlan: device, routes: [route("10.244.2.0/24", "10.244.2.0")], neighbours: [neigh("10.244.2.0", MAC2)], fdb: [fdb(MAC2, "172.31.5.12")] };
    expect(diffNetwork(desired, actual)).toEqual({
      steps: [
        { op: "add", kind: "fdb", fdb: fdb(MAC2, "172.31.5.12") },
        { op: "add", kind: "neighbour", neighbour: neigh("10.244.2.0", MAC2) },
        { op: "replace", kind: "route", route: route("10.244.2.0/24", "10.244.2.0") },
      ],
    });
  });

  it("deletes foreign garbage flatnet owns: stray proto-77 routes, neighbours, FDB rows incl. flood entries", () => {
    const actual: KernelState = {
      ...twoPeers,
      routes: [...twoPeers.routes, route("10.99.0.0/24", "172.31.0.50", "eth0"), route("fd00:99::/64", "fd00:99::", VX)],
      neighbours: [...twoPeers.neighbours, neigh("10.99.0.0", "0a:00:00:00:00:99")],
      fdb: [...twoPeers.fdb, fdb("00:00:00:00:00:00", "172.31.0.50"), fdb("00:00:00:00:00:00", "172.31.0.51")],
    };
    expect(diffNetwork(twoPeers, actual)).toEqual({
      steps: [
        { op: "delete", kind: "route", route: route("10.99.0.0/24", "172.31.0.50", "eth0") },
        { op: "delete", kind: "route", route: route("fd00:99::/64", "fd00:99::", VX) },
        { op: "delete", kind: "neighbour", neighbour: neigh("10.99.0.0", "0a:00:00:00:00:99") },
        { op: "delete", kind: "fdb", fdb: fdb("00:00:00:00:00:00", "172.31.0.50") },
        { op: "delete", kind: "fdb", fdb: fdb("00:00:00:00:00:00", "172.31.0.51") },
      ],
    });
  });

  it("leaves neighbours and FDB rows on devices flatnet does not own", () => {
    const actual: KernelState = { ...twoPeers, neighbours: [...twoPeers.neighbours, neigh("172.31.0.1", "0a:00:00:00:00:aa", "eth0")], fdb: [...twoPeers.fdb, fdb(MAC3, "1.1.1.1", "vxlan0")] };
    expect(diffNetwork(twoPeers, actual)).toEqual({ steps: [] });
  });

  it("this node's VTEP MAC changes: update in place, then every neighbour re-added (the kernel flushes them)", () => {
    const desired = { ...twoPeers, vxlan: { ...device, mac: "0a:00:00:00:00:aa" } };
    const plan = diffNetwork(desired, twoPeers);
    expect(plan).toEqual({
      steps: [
        { op: "update", kind: "vxlan-device", device: desired.vxlan, previous: device },
        { op: "add", kind: "neighbour", neighbour: neigh("10.244.2.0", MAC2) },
        { op: "add", kind: "neighbour", neighbour: neigh("10.244.3.0", MAC3) },
      ],
    });
    expect(applyPlan(twoPeers, { steps: [plan.steps[0]!] }).neighbours).toEqual([]);
    expect(sortKernelState(applyPlan(twoPeers, plan))).toEqual(sortKernelState(desired));
  });

  it("an IPv6 peer moving from host-gw to vxlan: old route deleted, then the onlink route added (Linux refuses a replace)", () => {
    const v6 = (dst: string, via: string, dev: string): Route => ({ family: "IPv6", dst, via, dev, onlink: dev === VX });
    const actual: KernelState = { vxlan: device, routes: [v6("fd00:10:244:2::/64", "fd00::12", "eth0")], neighbours: [], fdb: [] };
    const desired: KernelState = {
      vxlan: device,
      routes: [v6("fd00:10:244:2::/64", "fd00:10:244:2::", VX)],
      neighbours: [neigh("fd00:10:244:2::", MAC2)],
      fdb: [fdb(MAC2, "172.31.0.12")],
    };
    expect(diffNetwork(desired, actual)).toEqual({
      steps: [
        { op: "add", kind: "fdb", fdb: fdb(MAC2, "172.31.0.12") },
        { op: "add", kind: "neighbour", neighbour: neigh("fd00:10:244:2::", MAC2) },
        { op: "delete", kind: "route", route: v6("fd00:10:244:2::/64", "fd00::12", "eth0") },
        { op: "add", kind: "route", route: v6("fd00:10:244:2::/64", "fd00:10:244:2::", VX) },
      ],
    });
  });

  it.each<[string, Partial<VxlanDevice>, Plan["steps"][number]["op"]]>([
    ["MTU", { mtu: 1400 }, "update"],
    ["addresses", { addresses: ["10.244.1.0/32", "fd00:10:244:1::/128"] }, "update"],
    ["VNI", { vni: 2 }, "replace"],
    ["port", { port: 4789 }, "replace"],
    ["local IP", { local: "172.31.0.111" }, "replace"],
    ["underlay device", { underlayDevice: "eth1" }, "replace"],
  ])("device %s change -> %s", (_label, change, op) => {
    const desired = { ...twoPeers, vxlan: { ...device, ...change } };
    const plan = diffNetwork(desired, twoPeers);
    if (op === "update") {
      expect(plan).toEqual({ steps: [{ op: "update", kind: "vxlan-device", device: desired.vxlan, previous: device }] });
    } else {
      // Recreating the device drops everything on it, so every peer object is programmed again.
      expect(plan.steps.map((step) => `${step.op} ${step.kind}`)).toEqual([
        "replace vxlan-device",
        "add fdb",
        "add fdb",
        "add neighbour",
        "add neighbour",
        "add route",
        "add route",
      ]);
    }
    expect(sortKernelState(applyPlan(twoPeers, plan))).toEqual(sortKernelState(desired));
  });

  it("switching to host-gw: routes replaced onto the underlay, then the device (and its objects) deleted", () => {
    const desired: KernelState = { routes: [route("10.244.2.0/24", "172.31.0.12", "eth0"), route("10.244.3.0/24", "172.31.1.13", "eth0")], neighbours: [], fdb: [] };
    const plan = diffNetwork(desired, twoPeers);
    expect(plan).toEqual({
      steps: [
        { op: "replace", kind: "route", route: route("10.244.2.0/24", "172.31.0.12", "eth0") },
        { op: "replace", kind: "route", route: route("10.244.3.0/24", "172.31.1.13", "eth0") },
        { op: "delete", kind: "vxlan-device", device },
      ],
    });
    expect(sortKernelState(applyPlan(twoPeers, plan))).toEqual(sortKernelState(desired));
  });

  it("a renamed device: the new one is created first, the old one deleted last", () => {
    const renamed = { ...device, name: "flatnet.2" };
    const desired: KernelState = { vxlan: renamed, routes: [route("10.244.2.0/24", "10.244.2.0", "flatnet.2")], neighbours: [neigh("10.244.2.0", MAC2, "flatnet.2")], fdb: [fdb(MAC2, "172.31.0.12", "flatnet.2")] };
    const plan = diffNetwork(desired, twoPeers);
    expect(plan).toEqual({
      steps: [
        { op: "create", kind: "vxlan-device", device: renamed },
        { op: "add", kind: "fdb", fdb: desired.fdb[0] },
        { op: "add", kind: "neighbour", neighbour: desired.neighbours[0] },
        { op: "replace", kind: "route", route: desired.routes[0] },
        { op: "delete", kind: "vxlan-device", device },
      ],
    });
    expect(sortKernelState(applyPlan(twoPeers, plan))).toEqual(sortKernelState(desired));
  });
});

describe("applyPlan", () => {
  it("models the kernel: a unicast FDB add overwrites that MAC's row, a flood-entry add appends", () => {
    const state = applyPlan(twoPeers, {
      steps: [
        { op: "add", kind: "fdb", fdb: fdb(MAC2, "172.31.0.77") },
        { op: "add", kind: "fdb", fdb: fdb("00:00:00:00:00:00", "172.31.0.1") },
        { op: "add", kind: "fdb", fdb: fdb("00:00:00:00:00:00", "172.31.0.2") },
      ],
    });
    expect(state.fdb).toEqual([fdb(MAC3, "172.31.1.13"), fdb(MAC2, "172.31.0.77"), fdb("00:00:00:00:00:00", "172.31.0.1"), fdb("00:00:00:00:00:00", "172.31.0.2")]);
  });

  it("does not mutate its input", () => {
    const before = JSON.stringify(twoPeers);
    applyPlan(twoPeers, { steps: [{ op: "delete", kind: "vxlan-device", device }] });
    expect(JSON.stringify(twoPeers)).toBe(before);
  });

  it("a deleted device takes its neighbours, FDB rows and routes", () => {
    const withHostGw = { ...twoPeers, routes: [...twoPeers.routes, route("10.244.4.0/24", "172.31.0.14", "eth0")] };
    expect(applyPlan(withHostGw, { steps: [{ op: "delete", kind: "vxlan-device", device }] })).toEqual({
      routes: [route("10.244.4.0/24", "172.31.0.14", "eth0")],
      neighbours: [],
      fdb: [],
    });
  });
});
