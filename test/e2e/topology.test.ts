import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planSegments, underlayIpsOf } from "../../apps/agent/src/lab/addressing.ts";
import { run } from "../../apps/agent/src/lab/exec.ts";
import { routerNs, underlayNs } from "../../apps/agent/src/lab/names.ts";
import { createNode, createUnderlay, deleteNamespaces, listLabNamespaces } from "../../apps/agent/src/lab/topology.ts";

// The lab's underlay without agents: two L2 segments joined by a router (the auto backend's shape), dual-stack.
const PREFIX = "fn-e1-";
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("skipping lab topology tests: they create network namespaces and need root");

const ping = async (netns: string, ip: string): Promise<boolean> =>
  (await run("ip", ["netns", "exec", netns, "ping", "-n", "-q", "-c", "1", "-w", "5", ip], { allowFailure: true })).code === 0;

describe.skipIf(!isRoot)("lab topology (auto shape, dual-stack)", () => {
  const segments = planSegments("auto", true);
  const nodes = [1, 2, 3].map((index) => ({
    index,
    netns: `${PREFIX}node${index}`,
    segment: (index - 1) % 2,
    ips: underlayIpsOf((index - 1) % 2, index, true),
  }));

  beforeAll(async () => {
    await deleteNamespaces(await listLabNamespaces(PREFIX));
    await createUnderlay(PREFIX, "auto", true);
    await Promise.all(
      nodes.map((node) =>
        createNode(PREFIX, {
          netns: node.netns,
          port: `ul-node${node.index}`,
          segment: segments[node.segment]!,
          underlayIps: node.ips,
          segments,
        }),
      ),
    );
  });

  afterAll(async () => {
    await deleteNamespaces(await listLabNamespaces(PREFIX));
  });

  it("creates exactly the lab's namespaces, all of the lab's shapes", async () => {
    const names = await listLabNamespaces(PREFIX);
    expect(names.sort()).toEqual([`${PREFIX}node1`, `${PREFIX}node2`, `${PREFIX}node3`, routerNs(PREFIX), underlayNs(PREFIX)].sort());
  });

  it.each([
    ["same segment, IPv4", "node1", "172.31.0.13"],
    ["same segment, IPv6", "node1", "fd00:172:31::13"],
    ["across the router, IPv4", "node1", "172.31.1.12"],
    ["across the router, IPv6", "node3", "fd00:172:31:1::12"],
    ["across the router, back", "node2", "172.31.0.11"],
  ])("underlay reachable: %s (%s -> %s)", async (_, from, to) => {
    expect(await ping(`${PREFIX}${from}`, to)).toBe(true);
  });

  it("puts nodes of one segment on one L2 link and routes the other segment via the router", async () => {
    const { stdout } = await run("ip", ["-n", `${PREFIX}node1`, "-j", "route", "show"]);
    const routes = (JSON.parse(stdout) as { dst: string; gateway?: string }[]).map((r) => [r.dst, r.gateway ?? null]);
    expect(routes).toEqual([
      ["172.31.0.0/24", null],
      ["172.31.1.0/24", "172.31.0.254"],
    ]);
  });
});
