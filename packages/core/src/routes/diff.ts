import type { FdbEntry, KernelState, Neighbour, Plan, PlanStep, Route, VxlanDevice } from "./types.ts";

/**
 * The ordered plan that turns `actual` into `desired`, touching only objects flatnet owns (every listed route, and
 * neighbours and FDB rows on a flatnet VXLAN device). Order: device create/replace/update; FDB adds; neighbour adds;
 * route adds (an IPv6 onlink route moving from another device is deleted then added); route deletes; neighbour
 * deletes; FDB deletes; device delete. So a route never points at a VTEP
 * without neighbour and FDB entries, and a device's removal takes its own objects with it.
 * Both states must hold canonical strings (adapters normalise what they read), each object listed once.
 * @example
 * const plan = diffNetwork(desired, await kernel.read());
 * for (const batch of renderPlan(plan)) await run(batch.tool, batch.lines);
 */
export function diffNetwork(desired: KernelState, actual: KernelState): Plan {
  const first: PlanStep[] = [];
  const last: PlanStep[] = [];
  const want = desired.vxlan;
  const have = actual.vxlan;
  // Devices whose current objects are gone (recreated) or going (deleted at the end) by the device step.
  const resetDevices = new Set<string>();
  const droppedDevices = new Set<string>();
  const flushedNeighbours = new Set<string>();

  if (want !== undefined) {
    if (have === undefined || have.name !== want.name) {
      first.push({ op: "create", kind: "vxlan-device", device: want });
      resetDevices.add(want.name);
    } else if (!sameImmutableDevice(want, have)) {
      first.push({ op: "replace", kind: "vxlan-device", device: want });
      resetDevices.add(want.name);
    } else if (want.mtu !== have.mtu || want.mac !== have.mac || !sameList(want.addresses, have.addresses)) {
      first.push({ op: "update", kind: "vxlan-device", device: want, previous: have });
      // A new device MAC makes the kernel flush the device's neighbours, permanent ones included.
      if (want.mac !== have.mac) flushedNeighbours.add(want.name);
    }
  }
  if (have !== undefined && have.name !== want?.name) {
    last.push({ op: "delete", kind: "vxlan-device", device: have });
    droppedDevices.add(have.name);
  }

  const owned = new Set<string>();
  if (want !== undefined) owned.add(want.name);
  if (have !== undefined) owned.add(have.name);
  const present = (dev: string): boolean => !resetDevices.has(dev);
  const removable = (dev: string): boolean => !resetDevices.has(dev) && !droppedDevices.has(dev);

  // FDB: a unicast MAC has one row per device, so a row for the same MAC with another dst is replaced in place.
  const fdbAdds: PlanStep[] = [];
  const fdbDeletes: PlanStep[] = [];
  const haveFdb = new DeviceIndex<FdbEntry | FdbEntry[]>();
  for (const row of actual.fdb) {
    if (!owned.has(row.dev) || !present(row.dev)) continue;
    const rows = haveFdb.get(row.dev, row.mac);
    haveFdb.set(row.dev, row.mac, rows === undefined ? row : Array.isArray(rows) ? [...rows, row] : [rows, row]);
  }
  for (const row of desired.fdb) {
    const found = haveFdb.get(row.dev, row.mac);
    if (found === undefined) {
      fdbAdds.push({ op: "add", kind: "fdb", fdb: row });
    } else if (!Array.isArray(found) && found.dst === row.dst) {
      haveFdb.take(row.dev, row.mac); // in place: kept
    } else if (Array.isArray(found) && found.some((candidate) => candidate.dst === row.dst)) {
      haveFdb.set(row.dev, row.mac, found.filter((candidate) => candidate.dst !== row.dst));
    } else if (isUnicastMac(row.mac)) {
      fdbAdds.push({ op: "replace", kind: "fdb", fdb: row });
      haveFdb.take(row.dev, row.mac); // overwritten by the replace
    } else {
      fdbAdds.push({ op: "add", kind: "fdb", fdb: row });
    }
  }
  for (const found of haveFdb.values()) {
    for (const row of Array.isArray(found) ? found : [found]) {
      if (removable(row.dev)) fdbDeletes.push({ op: "delete", kind: "fdb", fdb: row });
    }
  }

  const neighbourChanges = diffKeyed(
    desired.neighbours,
    actual.neighbours,
    (entry) => owned.has(entry.dev) && present(entry.dev) && !flushedNeighbours.has(entry.dev),
    (entry) => entry.dev,
    (entry) => entry.ip,
    (a, b) => a.mac === b.mac && a.family === b.family,
  );
  const routeChanges = diffKeyed(
    desired.routes,
    actual.routes,
    (route) => present(route.dev),
    (route) => route.family,
    (route) => route.dst,
    (a, b) => a.via === b.via && a.dev === b.dev && a.onlink === b.onlink,
  );

  const steps: PlanStep[] = [...first, ...fdbAdds];
  for (const [op, neighbour] of neighbourChanges.upserts) steps.push({ op, kind: "neighbour", neighbour });
  for (const [op, route, previous] of routeChanges.upserts) {
    if (op === "replace" && route.family === "IPv6" && route.onlink && previous !== undefined && previous.dev !== route.dev) {
      // Linux refuses an IPv6 onlink gateway that the route being replaced reaches through another device
      // ("Nexthop has invalid gateway or device mismatch"): delete the old route, then add.
      steps.push({ op: "delete", kind: "route", route: previous }, { op: "add", kind: "route", route });
    } else {
      steps.push({ op, kind: "route", route });
    }
  }
  for (const route of routeChanges.deletes) {
    if (removable(route.dev)) steps.push({ op: "delete", kind: "route", route });
  }
  for (const neighbour of neighbourChanges.deletes) {
    if (removable(neighbour.dev)) steps.push({ op: "delete", kind: "neighbour", neighbour });
  }
  steps.push(...fdbDeletes, ...last);
  return { steps };
}

/**
 * A pure model of the kernel: `actual` after `plan`. Objects on a created, recreated or deleted device vanish with
 * it; `add` and `replace` of a unicast FDB MAC overwrite that MAC's row, as `bridge fdb replace` does.
 * @example diffNetwork(desired, applyPlan(actual, diffNetwork(desired, actual))).steps // []
 */
export function applyPlan(actual: KernelState, plan: Plan): KernelState {
  let vxlan = actual.vxlan;
  const routes = new Map(actual.routes.map((route) => [routeKey(route), route]));
  const neighbours = new Map(actual.neighbours.map((entry) => [neighbourKey(entry), entry]));
  const fdb = new Map(actual.fdb.map((row) => [fdbRowKey(row), row]));
  const dropDevice = (name: string): void => {
    for (const [key, route] of routes) if (route.dev === name) routes.delete(key);
    for (const [key, entry] of neighbours) if (entry.dev === name) neighbours.delete(key);
    for (const [key, row] of fdb) if (row.dev === name) fdb.delete(key);
  };

  for (const step of plan.steps) {
    switch (step.kind) {
      case "vxlan-device":
        if (step.op === "update") {
          if (step.device.mac !== step.previous.mac) {
            for (const [key, entry] of neighbours) if (entry.dev === step.device.name) neighbours.delete(key);
          }
          vxlan = step.device;
        } else if (step.op === "delete") {
          if (vxlan?.name === step.device.name) vxlan = undefined;
          dropDevice(step.device.name);
        } else {
          dropDevice(step.device.name);
          vxlan = step.device;
        }
        break;
      case "route":
        if (step.op === "delete") routes.delete(routeKey(step.route));
        else routes.set(routeKey(step.route), step.route);
        break;
      case "neighbour":
        if (step.op === "delete") neighbours.delete(neighbourKey(step.neighbour));
        else neighbours.set(neighbourKey(step.neighbour), step.neighbour);
        break;
      case "fdb":
        if (step.op === "delete") {
          fdb.delete(fdbRowKey(step.fdb));
        } else {
          if (isUnicastMac(step.fdb.mac)) {
            const macKey = fdbMacKey(step.fdb);
            for (const [key, row] of fdb) if (fdbMacKey(row) === macKey) fdb.delete(key);
          }
          fdb.set(fdbRowKey(step.fdb), step.fdb);
        }
        break;
    }
  }
  const state: KernelState = { routes: [...routes.values()], neighbours: [...neighbours.values()], fdb: [...fdb.values()] };
  if (vxlan !== undefined) state.vxlan = vxlan;
  return state;
}

/** The same state with every list in a canonical order (routes by family and dst, ...), to compare states as sets. */
export function sortKernelState(state: KernelState): KernelState {
  const byKey = <T>(key: (item: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  const sorted: KernelState = {
    routes: [...state.routes].sort(byKey(routeKey)),
    neighbours: [...state.neighbours].sort(byKey(neighbourKey)),
    fdb: [...state.fdb].sort(byKey(fdbRowKey)),
  };
  if (state.vxlan !== undefined) sorted.vxlan = state.vxlan;
  return sorted;
}

/** True when a MAC (canonical lowercase) is unicast and not all zeros: such an FDB MAC has a single row. */
export function isUnicastMac(mac: string): boolean {
  return (Number.parseInt(mac.slice(0, 2), 16) & 0x01) === 0 && mac !== "00:00:00:00:00:00";
}

function diffKeyed<T>(
  desired: readonly T[],
  actual: readonly T[],
  include: (item: T) => boolean,
  scope: (item: T) => string,
  key: (item: T) => string,
  same: (a: T, b: T) => boolean,
): { upserts: ["add" | "replace", T, T | undefined][]; deletes: T[] } {
  // Index positions, mark matches in a byte array: no Map deletes on the hot path.
  const have = new DeviceIndex<number>();
  for (let index = 0; index < actual.length; index++) {
    const item = actual[index]!;
    if (include(item)) have.set(scope(item), key(item), index);
  }
  const matched = new Uint8Array(actual.length);
  const upserts: ["add" | "replace", T, T | undefined][] = [];
  for (const item of desired) {
    const index = have.get(scope(item), key(item));
    if (index === undefined || matched[index] === 1) {
      upserts.push(["add", item, undefined]);
      continue;
    }
    matched[index] = 1;
    const current = actual[index]!;
    if (!same(item, current)) upserts.push(["replace", item, current]);
  }
  const deletes: T[] = [];
  for (const index of have.values()) if (matched[index] === 0) deletes.push(actual[index]!);
  return { upserts, deletes };
}

/** A two-level map (device or family, then address): no key strings built per object. */
class DeviceIndex<T> {
  private readonly scopes = new Map<string, Map<string, T>>();

  get(scope: string, key: string): T | undefined {
    return this.scopes.get(scope)?.get(key);
  }

  set(scope: string, key: string, value: T): void {
    let inner = this.scopes.get(scope);
    if (inner === undefined) this.scopes.set(scope, (inner = new Map()));
    inner.set(key, value);
  }

  /** Returns and removes the entry. */
  take(scope: string, key: string): T | undefined {
    const inner = this.scopes.get(scope);
    const value = inner?.get(key);
    if (value !== undefined) inner!.delete(key);
    return value;
  }

  *values(): IterableIterator<T> {
    for (const inner of this.scopes.values()) yield* inner.values();
  }
}

function sameImmutableDevice(a: VxlanDevice, b: VxlanDevice): boolean {
  return (
    a.vni === b.vni &&
    a.port === b.port &&
    a.local === b.local &&
    a.underlayFamily === b.underlayFamily &&
    a.underlayDevice === b.underlayDevice
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(b);
  return a.every((item) => set.has(item));
}

function routeKey(route: Route): string {
  return `${route.family} ${route.dst}`;
}

function neighbourKey(entry: Neighbour): string {
  return `${entry.dev} ${entry.ip}`;
}

function fdbMacKey(row: FdbEntry): string {
  return `${row.dev} ${row.mac}`;
}

function fdbRowKey(row: FdbEntry): string {
  return `${row.dev} ${row.mac} ${row.dst}`;
}
