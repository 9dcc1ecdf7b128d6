import { FLATNET_ROUTE_PROTOCOL, type Plan, type PlanStep, type VxlanDevice } from "./types.ts";

/** Lines for one `ip -batch -` or `bridge -batch -` run (run them with `-n <netns>`, in order). */
export interface RenderedBatch {
  tool: "ip" | "bridge";
  lines: string[];
}

/**
 * Renders a plan as consecutive iproute2 batches, in plan order: `ip -batch -` for links, addresses, neighbours and
 * routes, `bridge -batch -` for FDB rows. Adds use `replace` (idempotent); routes carry `proto 77`.
 * @example
 * renderPlan({ steps: [{ op: "add", kind: "route", route: { family: "IPv4", dst: "10.244.2.0/24", via: "172.31.0.12", dev: "eth0", onlink: false } }] })
 * // [{ tool: "ip", lines: ["route replace 10.244.2.0/24 via 172.31.0.12 dev eth0 proto 77"] }]
 */
export function renderPlan(plan: Plan): RenderedBatch[] {
  const batches: RenderedBatch[] = [];
  for (const step of plan.steps) {
    const tool = step.kind === "fdb" ? "bridge" : "ip";
    const lines = renderStep(step);
    const current = batches.at(-1);
    if (current !== undefined && current.tool === tool) current.lines.push(...lines);
    else batches.push({ tool, lines });
  }
  return batches;
}

/** The iproute2 batch lines for one plan step (without the `ip`/`bridge` word). */
export function renderStep(step: PlanStep): string[] {
  switch (step.kind) {
    case "vxlan-device": {
      const device = step.device;
      switch (step.op) {
        case "create":
          return createDevice(device);
        case "replace":
          return [`link del dev ${device.name}`, ...createDevice(device)];
        case "update": {
          const kept = new Set(step.previous.addresses);
          const wanted = new Set(device.addresses);
          return [
            // Writing the MAC, even an unchanged one, flushes the device's neighbours (permanent too): only when it changes.
            `link set dev ${device.name}${device.mac === step.previous.mac ? "" : ` address ${device.mac}`} mtu ${device.mtu} up`,
            ...device.addresses.filter((address) => !kept.has(address)).map((address) => addAddress(device.name, address)),
            ...step.previous.addresses.filter((address) => !wanted.has(address)).map((address) => `address del ${address} dev ${device.name}`),
          ];
        }
        case "delete":
          return [`link del dev ${device.name}`];
      }
      break;
    }
    case "neighbour": {
      const { ip, mac, dev } = step.neighbour;
      return step.op === "delete" ? [`neigh del ${ip} dev ${dev}`] : [`neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`];
    }
    case "fdb": {
      const { mac, dst, dev } = step.fdb;
      return step.op === "delete" ? [`fdb del ${mac} dev ${dev} dst ${dst} self`] : [`fdb replace ${mac} dev ${dev} dst ${dst} self permanent`];
    }
    case "route": {
      const { dst, via, dev, onlink } = step.route;
      const verb = step.op === "delete" ? "del" : "replace";
      return [`route ${verb} ${dst} via ${via} dev ${dev}${onlink ? " onlink" : ""} proto ${FLATNET_ROUTE_PROTOCOL}`];
    }
  }
  throw new Error(`renderStep: unknown plan step ${JSON.stringify(step)}`);
}

function createDevice(device: VxlanDevice): string[] {
  return [
    // nolearning: peers are programmed statically (neighbour + FDB), the device never floods to learn them.
    `link add ${device.name} address ${device.mac} mtu ${device.mtu} type vxlan id ${device.vni} local ${device.local} dev ${device.underlayDevice} dstport ${device.port} nolearning`,
    `link set dev ${device.name} up`,
    ...device.addresses.map((address) => addAddress(device.name, address)),
  ];
}

function addAddress(dev: string, address: string): string {
  // nodad: a VTEP /128 on a non-learning overlay has nobody to collide with; DAD would only delay its use.
  return address.includes(":") ? `address replace ${address} dev ${dev} nodad` : `address replace ${address} dev ${dev}`;
}
