import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cidrsOverlap, cidrContains, parseCidr } from "../cidr/cidr.ts";
import { unwrap } from "../errors.ts";
import { ClusterIpam, type ClusterIpamConfig, type ClusterIpamEvent } from "./cluster-ipam.ts";

const DUAL: ClusterIpamConfig = { clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/48"] };

function make(config: ClusterIpamConfig): ClusterIpam {
  return unwrap(ClusterIpam.create(config));
}

describe("ClusterIpam.create", () => {
  it.each([
    { config: { clusterCidrs: [] }, code: "ERR_INVALID_CONFIG", text: "at least one cluster CIDR" },
    { config: { clusterCidrs: ["10.244.0.0/33"] }, code: "ERR_INVALID_CIDR", text: 'cluster CIDR: CIDR "10.244.0.0/33" has prefix length 33; IPv4 allows 0-32' },
    { config: { clusterCidrs: ["10.244.0.1/16"] }, code: "ERR_HOST_BITS_SET", text: "the network is 10.244.0.0/16" },
    { config: { clusterCidrs: ["10.244.0.0/16", "10.244.128.0/17"] }, code: "ERR_OVERLAP", text: 'overlaps cluster CIDR "10.244.0.0/16"' },
    { config: { clusterCidrs: ["10.244.0.0/16"], nodeMaskIPv4: 31 }, code: "ERR_INVALID_CONFIG", text: "node mask 31 for IPv4 is invalid; it must be an integer 0-30" },
    { config: { clusterCidrs: ["10.244.0.0/16"], nodeMaskIPv4: 12 }, code: "ERR_INVALID_CONFIG", text: "smaller than one /12 node CIDR" },
    { config: { clusterCidrs: ["fd00::/16"] }, code: "ERR_TOO_LARGE", text: "gives 2^48 node CIDRs; at most 2^32" },
    { config: { clusterCidrs: ["fd00::/48"], nodeMaskIPv6: 127 }, code: "ERR_INVALID_CONFIG", text: "node mask 127 for IPv6" },
  ])("rejects $config.clusterCidrs ($code)", ({ config, code, text }) => {
    const result = ClusterIpam.create(config);
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toContain(text);
  });

  it.each([
    { config: { clusterCidrs: ["0.0.0.0/0"], nodeMaskIPv4: 30 }, capacity: 2 ** 30 },
    { config: { clusterCidrs: ["fd00::/32"] }, capacity: 2 ** 32 },
    { config: { clusterCidrs: ["10.0.0.0/24"] }, capacity: 1 },
    { config: { clusterCidrs: ["10.0.0.0/24", "10.1.0.0/23"] }, capacity: 1 },
  ])("accepts $config.clusterCidrs (capacity $capacity)", ({ config, capacity }) => {
    expect(make(config).usage()[0]?.capacity).toBe(capacity);
  });
});

describe("ClusterIpam.allocate", () => {
  it("allocates dual-stack, idempotently, in pool order, next-fit", () => {
    const ipam = make(DUAL);
    expect(unwrap(ipam.allocate("a"))).toEqual({
      node: "a",
      podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"],
      event: { type: "allocate", node: "a", podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"] },
    });
    expect(unwrap(ipam.allocate("a"))).toEqual({ node: "a", podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"], event: undefined });
    expect(unwrap(ipam.allocate("b")).podCidrs).toEqual(["10.244.1.0/24", "fd00:10:244:1::/64"]);
    expect(unwrap(ipam.release("a")).event).toEqual({ type: "release", node: "a", podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"] });
    // next-fit: the freed block is not reused at once
    expect(unwrap(ipam.allocate("c")).podCidrs).toEqual(["10.244.2.0/24", "fd00:10:244:2::/64"]);
    expect(ipam.usage()).toEqual([
      { pool: "10.244.0.0/16", family: "IPv4", nodeMask: 24, capacity: 256, used: 2, free: 254 },
      { pool: "fd00:10:244::/48", family: "IPv6", nodeMask: 64, capacity: 65536, used: 2, free: 65534 },
    ]);
  });

  it("orders pod CIDRs by the family order of the cluster CIDRs (IPv6 first when listed first)", () => {
    const ipam = make({ clusterCidrs: ["fd00:10:244::/56", "10.244.0.0/16"] });
    expect(unwrap(ipam.allocate("a")).podCidrs).toEqual(["fd00:10:244::/64", "10.244.0.0/24"]);
  });

  it("hands out the last block of a pool, then wraps around to freed blocks, then reports exhaustion", () => {
    const ipam = make({ clusterCidrs: ["10.0.0.0/30"], nodeMaskIPv4: 30 });
    expect(unwrap(ipam.allocate("only")).podCidrs).toEqual(["10.0.0.0/30"]);
    const full = ipam.allocate("second");
    expect(full.error).toMatchObject({ code: "ERR_POOL_EXHAUSTED", details: { node: "second", family: "IPv4", pools: ["10.0.0.0/30"] } });
    expect(full.error?.message).toBe('no free IPv4 node CIDR for node "second": cluster CIDR 10.0.0.0/30 (1 of 1 /30 in use) is full; nothing was allocated');

    const four = make({ clusterCidrs: ["10.0.0.0/22"] });
    for (const node of ["n0", "n1", "n2", "n3"]) unwrap(four.allocate(node));
    expect(four.podCidrsOf("n3")).toEqual(["10.0.3.0/24"]);
    unwrap(four.release("n1"));
    expect(unwrap(four.allocate("n4")).podCidrs).toEqual(["10.0.1.0/24"]);
  });

  it("is atomic across families: an exhausted IPv6 pool takes no IPv4 block, however often it is retried", () => {
    const ipam = make({ clusterCidrs: ["10.0.0.0/16", "fd00::/64"], nodeMaskIPv6: 64 });
    unwrap(ipam.allocate("a"));
    for (let attempt = 0; attempt < 5; attempt++) {
      expect(ipam.allocate("b").error?.code).toBe("ERR_POOL_EXHAUSTED");
    }
    expect(ipam.usage().map((pool) => pool.used)).toEqual([1, 1]);
    expect(ipam.podCidrsOf("b")).toBeUndefined();
  });

  it("uses a second pool of the same family when the first is full", () => {
    const ipam = make({ clusterCidrs: ["10.0.0.0/24", "10.1.0.0/24"] });
    expect(unwrap(ipam.allocate("a")).podCidrs).toEqual(["10.0.0.0/24"]);
    expect(unwrap(ipam.allocate("b")).podCidrs).toEqual(["10.1.0.0/24"]);
    expect(ipam.allocate("c").error?.message).toContain("10.0.0.0/24 (1 of 1 /24 in use), 10.1.0.0/24 (1 of 1 /24 in use)");
  });

  it("adds the missing family when a single-stack cluster becomes dual-stack", () => {
    const v4 = make({ clusterCidrs: ["10.244.0.0/16"] });
    unwrap(v4.allocate("a"));
    const state = v4.toJSON();
    const dual = unwrap(ClusterIpam.fromJSON({ ...state, config: { ...state.config, clusterCidrs: [...state.config.clusterCidrs, "fd00::/48"] }, cursors: [0, -1] }));
    expect(unwrap(dual.allocate("a"))).toEqual({
      node: "a",
      podCidrs: ["10.244.0.0/24", "fd00::/64"],
      event: { type: "allocate", node: "a", podCidrs: ["fd00::/64"] },
    });
  });

  it.each([
    { clusterCidrs: ["fd00::/32"], expected: ["fd00::/64", "fd00:0:0:1::/64", "fd00:0:0:2::/64", "fd00:0:0:3::/64"] },
    { clusterCidrs: ["0.0.0.0/0"], nodeMaskIPv4: 30, expected: ["0.0.0.0/30", "0.0.0.4/30", "0.0.0.8/30", "0.0.0.12/30"] },
  ])("works on pools too large for a bitmap ($clusterCidrs)", ({ expected, ...config }) => {
    const ipam = make(config);
    expect(["a", "b", "c"].map((node) => unwrap(ipam.allocate(node)).podCidrs[0])).toEqual(expected.slice(0, 3));
    unwrap(ipam.release("b"));
    expect(unwrap(ipam.allocate("d")).podCidrs).toEqual([expected[3]]);
    expect(ipam.usage()[0]).toMatchObject({ used: 3, free: ipam.usage()[0]!.capacity - 3 });
  });

  it.each(["", undefined as unknown as string])("rejects node name %j", (node) => {
    expect(make(DUAL).allocate(node).error?.code).toBe("ERR_INVALID_CONFIG");
  });
});

describe("ClusterIpam.occupy", () => {
  it("rebuilds state from observed nodes, idempotently, and allocation skips occupied blocks", () => {
    const ipam = make(DUAL);
    expect(unwrap(ipam.occupy("x", ["10.244.0.0/24", "fd00:10:244::/64"])).event).toEqual({
      type: "occupy",
      node: "x",
      podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"],
    });
    expect(unwrap(ipam.occupy("x", ["10.244.0.0/24"])).event).toBeUndefined();
    expect(unwrap(ipam.allocate("y")).podCidrs).toEqual(["10.244.1.0/24", "fd00:10:244:1::/64"]);
    expect(ipam.ownerOf(parseCidr("10.244.0.0/24"))).toBe("x");
    expect(ipam.ownerOf(parseCidr("10.244.1.128/25"))).toBe("y");
    expect(ipam.ownerOf(parseCidr("10.244.2.0/24"))).toBeUndefined();
    expect(ipam.ownerOf(parseCidr("10.245.0.0/24"))).toBeUndefined();
  });

  it.each([
    { cidrs: ["10.244.0.0/24"], code: "ERR_CONFLICT", text: 'pod CIDR "10.244.0.0/24" of node "intruder" conflicts with "10.244.0.0/24" held by node "x"' },
    { cidrs: ["10.244.0.128/25"], code: "ERR_CONFLICT", text: 'conflicts with "10.244.0.0/24" held by node "x"' },
    { cidrs: ["10.244.0.0/23"], code: "ERR_CONFLICT", text: 'held by node "x"' },
    { cidrs: ["10.245.0.0/24"], code: "ERR_OUT_OF_RANGE", text: "is not inside any cluster CIDR (10.244.0.0/16, fd00:10:244::/48)" },
    { cidrs: ["10.0.0.0/8"], code: "ERR_OUT_OF_RANGE", text: "is not inside any cluster CIDR" },
    { cidrs: ["10.244.5.1/24"], code: "ERR_HOST_BITS_SET", text: 'pod CIDR of node "intruder": CIDR "10.244.5.1/24" has host bits set' },
    { cidrs: ["10.244.5.0/24", "nonsense"], code: "ERR_INVALID_CIDR", text: '"nonsense"' },
  ])("rejects $cidrs ($code) and changes nothing", ({ cidrs, code, text }) => {
    const ipam = make(DUAL);
    unwrap(ipam.occupy("x", ["10.244.0.0/24"]));
    const before = ipam.toJSON();
    const result = ipam.occupy("intruder", cidrs);
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toContain(text);
    expect(ipam.toJSON()).toEqual(before);
  });

  it("rejects a node's two overlapping CIDRs", () => {
    const result = make(DUAL).occupy("x", ["10.244.0.0/24", "10.244.0.0/23"]);
    expect(result.error?.message).toContain("overlaps its own pod CIDR");
  });

  it("occupies ranges larger or smaller than a node block (e.g. a service CIDR)", () => {
    const ipam = make({ clusterCidrs: ["10.0.0.0/22"] });
    unwrap(ipam.occupy("reserved:services", ["10.0.0.0/23"]));
    unwrap(ipam.occupy("odd", ["10.0.2.128/25"]));
    expect(ipam.usage()[0]).toMatchObject({ used: 3, free: 1 });
    expect(unwrap(ipam.allocate("a")).podCidrs).toEqual(["10.0.3.0/24"]);
    unwrap(ipam.release("reserved:services"));
    expect(ipam.usage()[0]).toMatchObject({ used: 2, free: 2 });
  });
});

describe("ClusterIpam JSON and journal", () => {
  function scenario(): { ipam: ClusterIpam; events: ClusterIpamEvent[] } {
    const ipam = make(DUAL);
    const events: ClusterIpamEvent[] = [];
    const record = (change: { success: boolean; data?: { event: ClusterIpamEvent | undefined } }) => {
      if (change.data?.event) events.push(change.data.event);
    };
    record(ipam.allocate("a"));
    record(ipam.allocate("b"));
    record(ipam.occupy("c", ["10.244.9.0/24"]));
    record(ipam.release("a"));
    record(ipam.allocate("d"));
    record(ipam.allocate("d"));
    return { ipam, events };
  }

  it("round-trips through toJSON / fromJSON (also via a JSON string)", () => {
    const { ipam } = scenario();
    const state = ipam.toJSON();
    expect(state).toEqual({
      version: 1,
      config: { clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/48"], nodeMaskIPv4: 24, nodeMaskIPv6: 64 },
      cursors: [2, 2],
      nodes: [
        { node: "b", podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"] },
        { node: "c", podCidrs: ["10.244.9.0/24"] },
        { node: "d", podCidrs: ["10.244.2.0/24", "fd00:10:244:2::/64"] },
      ],
    });
    const restored = unwrap(ClusterIpam.fromJSON(JSON.parse(JSON.stringify(state))));
    expect(restored.toJSON()).toEqual(state);
    expect(unwrap(restored.allocate("e")).podCidrs).toEqual(unwrap(ipam.allocate("e")).podCidrs);
  });

  it("replaying the journal rebuilds the same state", () => {
    const { ipam, events } = scenario();
    expect(events.map((event) => event.type)).toEqual(["allocate", "allocate", "occupy", "release", "allocate"]);
    expect(unwrap(ClusterIpam.replay(DUAL, events)).toJSON()).toEqual(ipam.toJSON());
  });

  it.each([
    { state: null, text: "not a version 1 state" },
    { state: { version: 2 }, text: "not a version 1 state" },
    {
      state: { version: 1, config: DUAL, cursors: [], nodes: [{ node: "a", podCidrs: ["10.244.0.0/24"] }, { node: "b", podCidrs: ["10.244.0.0/24"] }] },
      text: 'inconsistent: pod CIDR "10.244.0.0/24" of node "b" conflicts with "10.244.0.0/24" held by node "a"',
    },
  ])("fromJSON rejects a bad state: $text", ({ state, text }) => {
    const result = ClusterIpam.fromJSON(state as never);
    expect(result.error?.code).toBe("ERR_INVALID_STATE");
    expect(result.error?.message).toContain(text);
  });

  it("apply rejects unknown events and mismatched releases", () => {
    const ipam = make(DUAL);
    unwrap(ipam.allocate("a"));
    expect(ipam.apply({ type: "explode" } as never).error?.code).toBe("ERR_INVALID_STATE");
    expect(ipam.apply({ type: "release", node: "a", podCidrs: ["10.244.7.0/24"] }).error?.code).toBe("ERR_CONFLICT");
    expect(unwrap(ipam.apply({ type: "release", node: "a", podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"] })).podCidrs).toEqual([]);
  });
});

describe("ClusterIpam properties", () => {
  it("allocations never overlap, stay inside their pool, and release+reallocate never duplicates", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 150 }), (ops) => {
        const ipam = make({ clusterCidrs: ["10.0.0.0/27", "fd00::/123"], nodeMaskIPv4: 30, nodeMaskIPv6: 126 });
        for (const [allocate, n] of ops) {
          const node = `n${n}`;
          if (allocate) {
            const result = ipam.allocate(node);
            if (!result.success) expect(result.error.code).toBe("ERR_POOL_EXHAUSTED");
          } else {
            unwrap(ipam.release(node));
          }
          const all = ipam.nodes().flatMap((entry) => entry.podCidrs.map((text) => parseCidr(text)));
          for (let i = 0; i < all.length; i++) {
            expect(cidrContains(parseCidr("10.0.0.0/27"), all[i]!) || cidrContains(parseCidr("fd00::/123"), all[i]!)).toBe(true);
            for (let j = i + 1; j < all.length; j++) expect(cidrsOverlap(all[i]!, all[j]!)).toBe(false);
          }
          for (const entry of ipam.nodes()) expect(entry.podCidrs).toHaveLength(2);
          expect(ipam.usage().map((pool) => pool.used)).toEqual([ipam.nodes().length, ipam.nodes().length]);
        }
      }),
      { numRuns: 100 },
    );
  });
});
