// host-local (the reference IPAM, Debian containernetworking-plugins) and flatnet's durable node IPAM on the same
// inputs: a recorded trace of both, asserting where they agree and the differences flatnet makes on purpose (docs/cni.md).
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseCidr } from "@flatnet/core";
import { IpamStore } from "../../apps/agent/src/ipam-store/store.ts";
import { haveReference, REFERENCE_PLUGINS, runPlugin, tempDir } from "./helpers.ts";

type Op = { op: "ADD" | "DEL"; id: string };
type Outcome = { ok: true; ips: string[] } | { ok: false; error: string };

const V4 = "10.79.0.0/29"; // pods .2-.6 (.0 network/VTEP, .1 gateway, .7 broadcast)
const V6 = "fd00:79::/126"; // pods ::2-::3

if (!haveReference) console.log("skipping host-local comparison: containernetworking-plugins is not installed (/usr/lib/cni)");

describe.skipIf(!haveReference)("host-local vs flatnet IPAM on the same inputs", { timeout: 120_000 }, () => {
  const dir = tempDir("fn-tc-hl-");
  afterAll(() => dir.remove());

  async function hostLocal(ops: Op[], pools: string[], name: string): Promise<Outcome[]> {
    const conf = JSON.stringify({ cniVersion: "1.0.0", name, ipam: { type: "host-local", dataDir: join(dir.path, "host-local"), ranges: pools.map((subnet) => [{ subnet }]) } });
    const out: Outcome[] = [];
    for (const { op, id } of ops) {
      const run = await runPlugin({ CNI_COMMAND: op, CNI_CONTAINERID: id, CNI_NETNS: "/dev/null", CNI_IFNAME: "eth0", CNI_PATH: REFERENCE_PLUGINS }, conf, join(REFERENCE_PLUGINS, "host-local"));
      if (run.code !== 0) out.push({ ok: false, error: String(run.json?.msg) });
      else out.push({ ok: true, ips: op === "ADD" ? ((run.json?.ips as { address: string }[]) ?? []).map((ip) => ip.address) : [] });
    }
    return out;
  }

  function flatnet(ops: Op[], pools: string[], name: string): Outcome[] {
    const store = IpamStore.open(join(dir.path, "flatnet", name, "ipam.db"));
    const cidrs = pools.map((p) => parseCidr(p));
    try {
      return ops.map(({ op, id }): Outcome => {
        if (op === "DEL") {
          store.release({ containerId: id, ifName: "eth0" });
          return { ok: true, ips: [] };
        }
        const got = store.allocate({ containerId: id, ifName: "eth0" }, cidrs);
        return got.success ? { ok: true, ips: got.data.map((a) => `${a.ip}/${a.prefix}`) } : { ok: false, error: got.error.message };
      });
    } finally {
      store.close();
    }
  }

  const ips = (o: Outcome | undefined) => (o?.ok ? o.ips : o?.error);

  it("agree: first address, gateway-skipping, next-fit order, broadcast never used, wrap-around, idempotent DEL", async () => {
    const ops: Op[] = [
      { op: "ADD", id: "a" }, { op: "ADD", id: "b" }, { op: "ADD", id: "c" }, { op: "DEL", id: "b" },
      { op: "ADD", id: "d" }, { op: "ADD", id: "e" }, { op: "ADD", id: "f" }, { op: "DEL", id: "f" }, { op: "DEL", id: "f" },
      { op: "DEL", id: "unknown" }, { op: "ADD", id: "g" },
    ];
    const reference = await hostLocal(ops, [V4], "agree");
    const ours = flatnet(ops, [V4], "agree");
    expect(ours.map(ips)).toEqual(reference.map(ips));
    expect(ours.map(ips)).toEqual([
      ["10.79.0.2/29"], ["10.79.0.3/29"], ["10.79.0.4/29"], [],
      ["10.79.0.5/29"], ["10.79.0.6/29"], ["10.79.0.3/29"], [], [], // .7 is broadcast: wraps to the released .3
      [], ["10.79.0.3/29"],
    ]);
  });

  it("differ on purpose: a repeated ADD of one attachment gets its addresses back (host-local refuses it)", async () => {
    const ops: Op[] = [{ op: "ADD", id: "a" }, { op: "ADD", id: "a" }];
    const reference = await hostLocal(ops, [V4, V6], "repeat");
    const ours = flatnet(ops, [V4, V6], "repeat");
    expect(ips(reference[0])).toEqual(ips(ours[0]));
    expect(reference[1]).toMatchObject({ ok: false });
    expect(ips(reference[1])).toContain("duplicate allocation is not allowed");
    // A runtime retries ADD after a plugin crash; flatnet answers with the same addresses instead of failing the pod.
    expect(ips(ours[1])).toEqual(["10.79.0.2/29", "fd00:79::2/126"]);
  });

  it("differ on purpose: a failed dual-stack ADD changes nothing in flatnet, host-local still moves its IPv4 cursor", async () => {
    const ops: Op[] = [{ op: "ADD", id: "a" }, { op: "ADD", id: "b" }, { op: "ADD", id: "c" }, { op: "DEL", id: "b" }, { op: "ADD", id: "d" }];
    const reference = await hostLocal(ops, [V4, V6], "atomic");
    const ours = flatnet(ops, [V4, V6], "atomic");
    // Both refuse c (the /126 has two pod addresses) and name the full range.
    expect(reference[2]).toMatchObject({ ok: false });
    expect(ips(reference[2])).toContain("no IP addresses available");
    expect(ours[2]).toMatchObject({ ok: false });
    expect(ips(ours[2])).toContain(V6);
    // d: host-local skips .4, the address of c's rolled-back attempt; flatnet's cursor never saw c.
    expect(ips(reference[4])).toEqual(["10.79.0.5/29", "fd00:79::3/126"]);
    expect(ips(ours[4])).toEqual(["10.79.0.4/29", "fd00:79::3/126"]);
  });

  it("differ on purpose: GC frees what is not in the valid list; host-local (spec <= 1.0.0) cannot be asked", async () => {
    const version = await runPlugin({ CNI_COMMAND: "VERSION" }, "{}", join(REFERENCE_PLUGINS, "host-local"));
    expect((version.json?.supportedVersions as string[]).includes("1.1.0")).toBe(false);
    flatnet([{ op: "ADD", id: "a" }, { op: "ADD", id: "b" }], [V4], "gc");
    const store = IpamStore.open(join(dir.path, "flatnet", "gc", "ipam.db"));
    expect(store.gc([{ containerId: "a", ifName: "eth0" }]).map((a) => a.containerId)).toEqual(["b"]);
    expect(store.list().map((a) => a.ip)).toEqual(["10.79.0.2"]);
    store.close();
  });
});
