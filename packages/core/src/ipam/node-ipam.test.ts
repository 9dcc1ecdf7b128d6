import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cidrContains, parseCidr } from "../cidr/cidr.ts";
import { unwrap } from "../errors.ts";
import { parseIp } from "../ip/address.ts";
import { NodeIpam, type NodeIpamConfig, type NodeIpamEvent } from "./node-ipam.ts";

const DUAL: NodeIpamConfig = { podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"] };
const pod = (containerId: string, ifName = "eth0") => ({ containerId, ifName });

function make(config: NodeIpamConfig): NodeIpam {
  return unwrap(NodeIpam.create(config));
}

describe("NodeIpam.create", () => {
  it.each([
    { podCidrs: [], code: "ERR_INVALID_CONFIG", text: "at least one pod CIDR" },
    { podCidrs: ["10.244.1.0/24", "10.244.2.0/24"], code: "ERR_INVALID_CONFIG", text: 'second IPv4 pod CIDR besides "10.244.1.0/24"' },
    { podCidrs: ["10.244.1.0/31"], code: "ERR_INVALID_CONFIG", text: "too small to allocate from; IPv4 pod CIDRs need a prefix of at most /30" },
    { podCidrs: ["10.244.1.7/32"], code: "ERR_INVALID_CONFIG", text: "too small" },
    { podCidrs: ["fd00::/127"], code: "ERR_INVALID_CONFIG", text: "at most /126" },
    { podCidrs: ["fd00::1/128"], code: "ERR_INVALID_CONFIG", text: "at most /126" },
    { podCidrs: ["10.244.1.0/33"], code: "ERR_INVALID_CIDR", text: 'pod CIDR: CIDR "10.244.1.0/33"' },
    { podCidrs: ["10.244.1.1/24"], code: "ERR_HOST_BITS_SET", text: "the network is 10.244.1.0/24" },
  ])("rejects $podCidrs ($code)", ({ podCidrs, code, text }) => {
    const result = NodeIpam.create({ podCidrs });
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toContain(text);
  });

  it.each([
    { podCidr: "10.244.1.0/24", rangeStart: "10.244.1.2", rangeEnd: "10.244.1.254", gateway: "10.244.1.1", capacity: 253 },
    { podCidr: "10.0.0.0/30", rangeStart: "10.0.0.2", rangeEnd: "10.0.0.2", gateway: "10.0.0.1", capacity: 1 },
    { podCidr: "0.0.0.0/0", rangeStart: "0.0.0.2", rangeEnd: "255.255.255.254", gateway: "0.0.0.1", capacity: 2 ** 32 - 3 },
    { podCidr: "fd00::/126", rangeStart: "fd00::2", rangeEnd: "fd00::3", gateway: "fd00::1", capacity: 2 },
    { podCidr: "fd00::/64", rangeStart: "fd00::2", rangeEnd: "fd00::1f:ffff:ffff:fffe", gateway: "fd00::1", capacity: 2 ** 53 - 3 },
    { podCidr: "::/0", rangeStart: "::2", rangeEnd: "::1f:ffff:ffff:fffe", gateway: "::1", capacity: 2 ** 53 - 3 },
  ])("$podCidr hands out $rangeStart-$rangeEnd", ({ podCidr, rangeStart, rangeEnd, gateway, capacity }) => {
    expect(make({ podCidrs: [podCidr] }).usage()).toEqual([
      { podCidr, family: podCidr.includes(":") ? "IPv6" : "IPv4", gateway, rangeStart, rangeEnd, capacity, used: 0, free: capacity },
    ]);
  });
});

describe("NodeIpam.allocate / release", () => {
  it("allocates one IP per family, idempotently, with the CNI fields", () => {
    const ipam = make(DUAL);
    const first = unwrap(ipam.allocate(pod("a")));
    expect(first).toEqual({
      allocation: {
        containerId: "a",
        ifName: "eth0",
        seq: 1,
        ips: [
          { family: "IPv4", address: "10.244.1.2", prefix: 24, gateway: "10.244.1.1", podCidr: "10.244.1.0/24" },
          { family: "IPv6", address: "fd00:10:244:1::2", prefix: 64, gateway: "fd00:10:244:1::1", podCidr: "fd00:10:244:1::/64" },
        ],
      },
      event: { type: "allocate", seq: 1, containerId: "a", ifName: "eth0", ips: ["10.244.1.2", "fd00:10:244:1::2"] },
    });
    expect(unwrap(ipam.allocate(pod("a")))).toEqual({ allocation: first.allocation, event: undefined });
    expect(unwrap(ipam.allocate(pod("a", "net1"))).allocation?.ips.map((ip) => ip.address)).toEqual(["10.244.1.3", "fd00:10:244:1::3"]);
    expect(ipam.get(pod("a"))).toEqual(first.allocation);
    expect(ipam.holderOf("FD00:10:244:1:0::2")).toEqual(first.allocation);
    expect(ipam.holderOf("10.244.1.9")).toBeUndefined();
    expect(ipam.holderOf("10.9.9.9")).toBeUndefined();
  });

  it("is next-fit: a freed IP is not handed out again until the range wraps", () => {
    const ipam = make({ podCidrs: ["10.0.0.0/29"] }); // hands out .2-.6
    const addresses = (id: string) => unwrap(ipam.allocate(pod(id))).allocation!.ips[0]!.address;
    expect(["a", "b", "c"].map(addresses)).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    unwrap(ipam.release(pod("a")));
    expect(addresses("d")).toBe("10.0.0.5");
    expect(addresses("e")).toBe("10.0.0.6"); // the last address of the range, not the broadcast .7
    expect(addresses("f")).toBe("10.0.0.2"); // wrapped around to the freed one
    const full = ipam.allocate(pod("g"));
    expect(full.error).toMatchObject({ code: "ERR_POOL_EXHAUSTED", details: { podCidr: "10.0.0.0/29", containerId: "g" } });
    expect(full.error?.message).toBe('no free IP in pod CIDR 10.0.0.0/29 for container "g" interface "eth0": all 5 addresses 10.0.0.2-10.0.0.6 are in use; nothing was allocated');
    expect(ipam.usage()[0]).toMatchObject({ capacity: 5, used: 5, free: 0 });
  });

  it("is atomic across families: a full IPv6 pool takes no IPv4 address", () => {
    const ipam = make({ podCidrs: ["10.0.0.0/24", "fd00::/126"] });
    unwrap(ipam.allocate(pod("a")));
    unwrap(ipam.allocate(pod("b")));
    for (let attempt = 0; attempt < 3; attempt++) expect(ipam.allocate(pod("c")).error?.code).toBe("ERR_POOL_EXHAUSTED");
    expect(ipam.usage().map((usage) => usage.used)).toEqual([2, 2]);
    expect(ipam.get(pod("c"))).toBeUndefined();
  });

  it("release is idempotent and returns the release event", () => {
    const ipam = make(DUAL);
    unwrap(ipam.allocate(pod("a")));
    expect(unwrap(ipam.release(pod("a"))).event).toEqual({ type: "release", seq: 1, containerId: "a", ifName: "eth0", ips: ["10.244.1.2", "fd00:10:244:1::2"] });
    expect(unwrap(ipam.release(pod("a")))).toEqual({ allocation: undefined, event: undefined });
    expect(unwrap(ipam.release(pod("never")))).toEqual({ allocation: undefined, event: undefined });
    expect(ipam.usage().map((usage) => usage.used)).toEqual([0, 0]);
  });

  it("a stale release (old seq) cannot free the attachment's newer allocation", () => {
    const ipam = make({ podCidrs: ["10.0.0.0/30"] }); // a single address: reuse is certain
    const old = unwrap(ipam.allocate(pod("a"))).allocation!;
    unwrap(ipam.release({ ...pod("a"), seq: old.seq }));
    const reused = unwrap(ipam.allocate(pod("a"))).allocation!;
    expect(reused.ips[0]!.address).toBe(old.ips[0]!.address);
    const stale = ipam.release({ ...pod("a"), seq: old.seq });
    expect(stale.error).toMatchObject({ code: "ERR_STALE_RELEASE", details: { seq: 1, currentSeq: 2 } });
    expect(stale.error?.message).toBe('release of container "a" interface "eth0" carries seq 1, but its current allocation (10.0.0.2) is seq 2; nothing was released');
    expect(ipam.get(pod("a"))).toEqual(reused);
    expect(unwrap(ipam.release({ ...pod("a"), seq: 2 })).event?.seq).toBe(2);
  });

  it("releaseIp frees the holder, refuses a stale seq, and ignores free addresses", () => {
    const ipam = make({ podCidrs: ["10.0.0.0/30"] });
    unwrap(ipam.allocate(pod("a")));
    unwrap(ipam.release(pod("a")));
    unwrap(ipam.allocate(pod("b")));
    expect(ipam.releaseIp("10.0.0.2", 1).error?.code).toBe("ERR_STALE_RELEASE");
    expect(ipam.get(pod("b"))?.seq).toBe(2);
    expect(unwrap(ipam.releaseIp("10.0.0.2", 2)).allocation?.containerId).toBe("b");
    expect(unwrap(ipam.releaseIp("10.0.0.2"))).toEqual({ allocation: undefined, event: undefined });
    expect(ipam.releaseIp("10.0.0.02").error?.code).toBe("ERR_INVALID_IP");
  });

  it.each([
    { key: { containerId: "", ifName: "eth0" }, text: 'container id "" is invalid' },
    { key: { containerId: "a", ifName: "" }, text: 'interface name "" is invalid' },
    { key: undefined, text: "needs { containerId, ifName }" },
  ])("rejects attachment key $key", ({ key, text }) => {
    const ipam = make(DUAL);
    expect(ipam.allocate(key as never).error?.message).toContain(text);
    expect(ipam.release(key as never).error?.code).toBe("ERR_INVALID_CONFIG");
  });
});

describe("NodeIpam.reserve", () => {
  it("reserves given addresses, moves the cursor past them, and keeps seq monotonic", () => {
    const ipam = make(DUAL);
    const change = unwrap(ipam.reserve({ ...pod("r"), ips: ["10.244.1.100", "fd00:10:244:1::100"], seq: 7 }));
    expect(change.event).toEqual({ type: "allocate", seq: 7, containerId: "r", ifName: "eth0", ips: ["10.244.1.100", "fd00:10:244:1::100"] });
    expect(unwrap(ipam.reserve({ ...pod("r"), ips: ["fd00:10:244:1:0::100", "10.244.1.100"] })).event).toBeUndefined();
    const next = unwrap(ipam.allocate(pod("n"))).allocation!;
    expect(next.seq).toBe(8);
    expect(next.ips.map((ip) => ip.address)).toEqual(["10.244.1.101", "fd00:10:244:1::101"]);
  });

  it("may reserve a single family in a dual-stack IPAM", () => {
    const ipam = make(DUAL);
    expect(unwrap(ipam.reserve({ ...pod("v4"), ips: ["10.244.1.9"] })).allocation?.ips.map((ip) => ip.family)).toEqual(["IPv4"]);
    expect(ipam.usage().map((usage) => usage.used)).toEqual([1, 0]);
  });

  it.each([
    { ips: ["10.244.1.0"], code: "ERR_OUT_OF_RANGE", text: "is not allocatable: 10.244.1.0/24 hands out 10.244.1.2-10.244.1.254 (network, gateway 10.244.1.1 and broadcast are reserved)" },
    { ips: ["10.244.1.1"], code: "ERR_OUT_OF_RANGE", text: "not allocatable" },
    { ips: ["10.244.1.255"], code: "ERR_OUT_OF_RANGE", text: "not allocatable" },
    { ips: ["fd00:10:244:1::1"], code: "ERR_OUT_OF_RANGE", text: "(network, gateway fd00:10:244:1::1 are reserved)" },
    { ips: ["fd00:10:244:1:ffff:ffff:ffff:ffff"], code: "ERR_OUT_OF_RANGE", text: "not allocatable" },
    { ips: ["10.244.2.5"], code: "ERR_OUT_OF_RANGE", text: "is not inside the node's pod CIDRs (10.244.1.0/24, fd00:10:244:1::/64)" },
    { ips: ["::ffff:10.244.1.5"], code: "ERR_OUT_OF_RANGE", text: "not inside" },
    { ips: ["10.244.1.5", "10.244.1.6"], code: "ERR_CONFLICT", text: "names two IPv4 addresses" },
    { ips: ["10.244.1.50"], code: "ERR_CONFLICT", text: 'IP 10.244.1.50 is already held by container "holder" interface "eth0" (seq 1)' },
    { ips: [], code: "ERR_INVALID_CONFIG", text: "needs at least one IP" },
    { ips: ["10.244.1.256"], code: "ERR_INVALID_IP", text: '"10.244.1.256"' },
  ])("rejects $ips ($code)", ({ ips, code, text }) => {
    const ipam = make(DUAL);
    unwrap(ipam.reserve({ ...pod("holder"), ips: ["10.244.1.50"] }));
    const before = ipam.toJSON();
    const result = ipam.reserve({ ...pod("x"), ips });
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toContain(text);
    expect(ipam.toJSON()).toEqual(before);
  });

  it.each([0, -1, 1.5])("rejects seq %s", (seq) => {
    expect(make(DUAL).reserve({ ...pod("x"), ips: ["10.244.1.5"], seq }).error?.message).toContain(`seq ${seq}`);
  });

  it("refuses other addresses for an attachment that already holds some", () => {
    const ipam = make(DUAL);
    unwrap(ipam.reserve({ ...pod("x"), ips: ["10.244.1.5"] }));
    expect(ipam.reserve({ ...pod("x"), ips: ["10.244.1.6"] }).error?.message).toBe(
      'container "x" interface "eth0" already holds 10.244.1.5 (seq 1); release it before reserving 10.244.1.6',
    );
  });
});

describe("NodeIpam.gc", () => {
  it("frees every attachment not in the live set, in seq order", () => {
    const ipam = make(DUAL);
    for (const id of ["a", "b", "c", "d"]) unwrap(ipam.allocate(pod(id)));
    const { released, events } = ipam.gc([pod("b"), pod("d"), pod("unknown")]);
    expect(released.map((allocation) => allocation.containerId)).toEqual(["a", "c"]);
    expect(events.map((event) => [event.type, event.containerId, event.seq])).toEqual([
      ["release", "a", 1],
      ["release", "c", 3],
    ]);
    expect(ipam.allocations().map((allocation) => allocation.containerId)).toEqual(["b", "d"]);
    expect(ipam.gc([pod("b"), pod("d")])).toEqual({ released: [], events: [] });
    expect(ipam.gc([]).released).toHaveLength(2);
  });
});

describe("NodeIpam JSON and journal", () => {
  function scenario() {
    const ipam = make(DUAL);
    const events: NodeIpamEvent[] = [];
    const log = (result: { data?: { event: NodeIpamEvent | undefined } }) => result.data?.event && events.push(result.data.event);
    log(ipam.allocate(pod("a")));
    log(ipam.allocate(pod("b")));
    log(ipam.reserve({ ...pod("c"), ips: ["10.244.1.77"] }));
    log(ipam.release(pod("a")));
    log(ipam.allocate(pod("d")));
    events.push(...ipam.gc([pod("c"), pod("d")]).events);
    return { ipam, events };
  }

  it("round-trips through toJSON / fromJSON", () => {
    const { ipam } = scenario();
    const state = ipam.toJSON();
    expect(state).toEqual({
      version: 1,
      podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
      nextSeq: 5,
      lastReserved: ["10.244.1.78", "fd00:10:244:1::4"],
      allocations: [
        { containerId: "c", ifName: "eth0", seq: 3, ips: ["10.244.1.77"] },
        { containerId: "d", ifName: "eth0", seq: 4, ips: ["10.244.1.78", "fd00:10:244:1::4"] },
      ],
    });
    const restored = unwrap(NodeIpam.fromJSON(JSON.parse(JSON.stringify(state))));
    expect(restored.toJSON()).toEqual(state);
    expect(unwrap(restored.allocate(pod("e")))).toEqual(unwrap(ipam.allocate(pod("e"))));
  });

  it("replaying the journal rebuilds the same state; replay refuses a stale release", () => {
    const { ipam, events } = scenario();
    expect(unwrap(NodeIpam.replay(DUAL, events)).toJSON()).toEqual(ipam.toJSON());
    const stale = NodeIpam.replay(DUAL, [
      { type: "allocate", seq: 1, containerId: "a", ifName: "eth0", ips: ["10.244.1.2"] },
      { type: "release", seq: 9, containerId: "a", ifName: "eth0", ips: ["10.244.1.2"] },
    ]);
    expect(stale.error?.code).toBe("ERR_STALE_RELEASE");
    expect(stale.error?.message).toContain("replay: release of");
  });

  it.each([
    { state: null, text: "not a version 1 state" },
    { state: { version: 1, podCidrs: ["10.0.0.0/24"], nextSeq: 1, lastReserved: [], allocations: [
      { containerId: "a", ifName: "eth0", seq: 1, ips: ["10.0.0.5"] },
      { containerId: "b", ifName: "eth0", seq: 2, ips: ["10.0.0.5"] },
    ] }, text: 'inconsistent: IP 10.0.0.5 is already held by container "a"' },
  ])("fromJSON rejects $text", ({ state, text }) => {
    const result = NodeIpam.fromJSON(state as never);
    expect(result.error?.code).toBe("ERR_INVALID_STATE");
    expect(result.error?.message).toContain(text);
  });

  it("apply rejects unknown events", () => {
    expect(make(DUAL).apply({ type: "nope" } as never).error?.code).toBe("ERR_INVALID_STATE");
  });
});

describe("NodeIpam properties", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("allocate" as const), id: fc.integer({ min: 0, max: 12 }) }),
    fc.record({ kind: fc.constant("release" as const), id: fc.integer({ min: 0, max: 12 }) }),
    fc.record({ kind: fc.constant("gc" as const), live: fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 6 }) }),
  );

  // The IPv4 pool of 10.0.0.0/29 without network, gateway (.1) and broadcast, in next-fit order.
  const V4_USABLE = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"];
  const nextFit = (state: ReturnType<NodeIpam["toJSON"]>): string | undefined => {
    const held = new Set(state.allocations.flatMap((allocation) => allocation.ips));
    const start = V4_USABLE.indexOf(state.lastReserved[0] ?? "");
    for (let step = 1; step <= V4_USABLE.length; step++) {
      const address = V4_USABLE[(start + step) % V4_USABLE.length]!;
      if (!held.has(address)) return address;
    }
    return undefined;
  };

  it("allocations never overlap, stay in range, follow next-fit, and replay/JSON reproduce the state", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const config = { podCidrs: ["10.0.0.0/29", "fd00::/125"] };
        const ipam = make(config);
        const events: NodeIpamEvent[] = [];
        for (const step of ops) {
          if (step.kind === "allocate") {
            const expected = nextFit(ipam.toJSON());
            const result = ipam.allocate(pod(`c${step.id}`));
            if (!result.success) {
              expect(result.error.code).toBe("ERR_POOL_EXHAUSTED");
              continue;
            }
            if (result.data.event) {
              events.push(result.data.event);
              // next-fit: the first free address after the last one handed out, so a released address comes
              // back only once the cursor has passed every other free one
              expect(result.data.event.ips[0]).toBe(expected);
            }
          } else if (step.kind === "release") {
            const event = unwrap(ipam.release(pod(`c${step.id}`))).event;
            if (event) events.push(event);
          } else {
            events.push(...ipam.gc(step.live.map((id) => pod(`c${id}`))).events);
          }
          const seen = new Set<string>();
          for (const allocation of ipam.allocations()) {
            expect(allocation.ips).toHaveLength(2);
            for (const ip of allocation.ips) {
              expect(seen.has(ip.address)).toBe(false);
              seen.add(ip.address);
              expect(cidrContains(parseCidr(ip.podCidr), parseIp(ip.address))).toBe(true);
              expect([ip.gateway, "10.0.0.0", "10.0.0.7", "fd00::"]).not.toContain(ip.address);
            }
          }
          expect(ipam.usage().map((usage) => usage.used)).toEqual([seen.size / 2, seen.size / 2]);
        }
        expect(unwrap(NodeIpam.replay(config, events)).toJSON()).toEqual(ipam.toJSON());
        expect(unwrap(NodeIpam.fromJSON(ipam.toJSON())).toJSON()).toEqual(ipam.toJSON());
      }),
      { numRuns: 150 },
    );
  });
});
