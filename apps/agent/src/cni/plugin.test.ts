// The plugin's command logic with a fake kernel: rollback and failure paths that are hard to provoke in a real one.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PodAttachment } from "../linux/pod.ts";
import { IpamStore } from "../ipam-store/store.ts";
import { type PluginDeps, podTarget } from "./invocation.ts";
import { handleCni } from "./plugin.ts";

let dir: string;
let attached: Map<string, PodAttachment>;
let failAttach: Error | undefined;
let failDetach: Error | undefined;
let onAttach: (() => void) | undefined;

function deps(): PluginDeps {
  return {
    pods: {
      createLink: async (spec) => {
        attached.set(`${spec.containerId}/${spec.ifName}`, { ...spec, addresses: [], gateways: [] });
        return { hostIfName: `fnv-${spec.containerId}`, hostMac: "02:00:00:00:00:01" };
      },
      configureLink: async (spec, link) => {
        onAttach?.();
        if (failAttach) {
          attached.delete(`${spec.containerId}/${spec.ifName}`); // configurePodLink removes the pair when it fails
          throw failAttach;
        }
        attached.set(`${spec.containerId}/${spec.ifName}`, spec);
        return { hostIfName: link.hostIfName, hostMac: link.hostMac, podIfName: spec.ifName, podMac: "02:00:00:00:00:02", mtu: spec.mtu, addresses: spec.addresses, gateways: spec.gateways };
      },
      detach: async (ref) => {
        if (failDetach) throw failDetach;
        return { removed: attached.delete(`${ref.containerId}/${ref.ifName}`) };
      },
      inspect: async () => undefined,
      ensureBridge: async (_netns, spec) => ({ name: spec.name ?? "fn-br0", mac: "", mtu: spec.mtu, addresses: spec.gateways, changed: true }),
      hostVethName: (containerId) => `fnv-${containerId}`,
      listHostVeths: async () => [...attached.keys()].map((k) => `fnv-${k.split("/")[0]}`),
      detachLink: async () => {},
    },
    readFile: () => undefined,
    exists: () => true,
    openStore: (path) => IpamStore.open(path),
    trace: () => {},
  };
}

const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.1.0", name: "net", type: "flatnet", podCidrs: ["10.244.1.0/24"], mtu: 1450, nodeNetns: "node", dataDir: dir, ...extra });
const env = (command: string, containerId = "c1") => ({ CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: "/run/netns/pod", CNI_IFNAME: "eth0" });
const held = () => {
  const store = IpamStore.open(join(dir, "net", "ipam.db"));
  try {
    return store.list().map((a) => `${a.containerId} ${a.ip} ${a.state}`);
  } finally {
    store.close();
  }
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fn-cni-unit-"));
  attached = new Map();
  failAttach = undefined;
  failDetach = undefined;
  onAttach = undefined;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("handleCni with a fake kernel", () => {
  it("ADD allocates, attaches and marks the allocation attached", async () => {
    const out = await handleCni(env("ADD"), conf(), deps());
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout).ips).toEqual([{ address: "10.244.1.2/24", gateway: "10.244.1.1", interface: 1 }]);
    expect(held()).toEqual(["c1 10.244.1.2 attached"]);
    expect(attached.get("c1/eth0")).toMatchObject({ nodeNetns: "node", podNetns: { name: "pod" }, addresses: ["10.244.1.2/24"], gateways: ["10.244.1.1"], mtu: 1450, bridge: "fn-br0" });
  });

  it("a failed attach releases the allocation and answers 101 with the kernel's message", async () => {
    failAttach = new Error("RTNETLINK answers: Operation not permitted");
    const out = await handleCni(env("ADD"), conf(), deps());
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 101 });
    expect(JSON.parse(out.stdout).msg).toContain("Operation not permitted");
    expect(held()).toEqual([]);
    expect(attached.size).toBe(0);
  });

  it("an exhausted pool fails the ADD with 100 and removes the veth made meanwhile", async () => {
    const small = conf({ podCidrs: ["10.9.9.0/30"] });
    expect((await handleCni(env("ADD", "c1"), small, deps())).exitCode).toBe(0);
    const out = await handleCni(env("ADD", "c2"), small, deps());
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 100 });
    expect([...attached.keys()]).toEqual(["c1/eth0"]);
  });

  it("an allocation released by GC while ADD ran fails the ADD with 11 and removes the interface it made", async () => {
    onAttach = () => {
      const store = IpamStore.open(join(dir, "net", "ipam.db"));
      store.gc([]);
      store.close();
    };
    const out = await handleCni(env("ADD"), conf(), deps());
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 11 });
    expect(attached.size).toBe(0);
    expect(held()).toEqual([]);
  });

  it("a DEL whose interface cannot be removed answers 11 and keeps the address (never freed while in use)", async () => {
    await handleCni(env("ADD"), conf(), deps());
    failDetach = new Error("RTNETLINK answers: Device or resource busy");
    const out = await handleCni(env("DEL"), conf(), deps());
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 11 });
    expect(held()).toEqual(["c1 10.244.1.2 attached"]);
  });

  it("ADD after another plugin keeps its prevResult and points its ips at flatnet's interface", async () => {
    const prevResult = { cniVersion: "1.1.0", interfaces: [{ name: "lo0" }], ips: [{ address: "192.0.2.1/32", interface: 0 }] };
    const out = await handleCni(env("ADD"), conf({ prevResult }), deps());
    const result = JSON.parse(out.stdout);
    expect(result.interfaces.map((i: { name: string }) => i.name)).toEqual(["lo0", "fnv-c1", "eth0"]);
    expect(result.ips).toEqual([{ address: "192.0.2.1/32", interface: 0 }, { address: "10.244.1.2/24", gateway: "10.244.1.1", interface: 2 }]);
  });

  it("GC without cni.dev/valid-attachments is refused rather than read as 'release everything'", async () => {
    await handleCni(env("ADD"), conf(), deps());
    const out = await handleCni({ CNI_COMMAND: "GC" }, conf(), deps());
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 7 });
    expect(held()).toEqual(["c1 10.244.1.2 attached"]);
  });

  it("an internal bug becomes CNI error JSON without a stack", async () => {
    const broken = { ...deps(), openStore: () => { throw new TypeError("boom"); } };
    const out = await handleCni(env("ADD"), conf(), broken);
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toEqual({ cniVersion: "1.1.0", code: 5, msg: expect.stringContaining("boom") });
    expect(out.stdout).not.toContain("    at ");
  });

  it.each([
    ["/run/netns/pod-1", { name: "pod-1" }],
    ["/var/run/netns/cni-1234", { name: "cni-1234" }],
    ["/proc/42/ns/net", { path: "/proc/42/ns/net" }],
    ["/run/netns/a/b", { path: "/run/netns/a/b" }],
  ])("addresses CNI_NETNS %s as %j", (netns, target) => {
    expect(podTarget(netns)).toEqual(target);
  });
});

// Issue 14 item 8: GC decided what to keep before listing veths while ADD created its veth before allocating, so an
// ADD committing in between lost its veth to the sweep (IPAM "attached", pod without interface). The interleavings
// are driven by hooks in the fake kernel, at the exact points where the other command runs to its end.
describe("GC and ADD: the veth sweep never removes an ADD's veth", () => {
  const gcConf = () => conf({ "cni.dev/valid-attachments": [] }); // the runtime listed its pods before this one started
  const swept: string[] = [];
  const withHooks = (hooks: { beforeList?: () => Promise<void>; atCreate?: () => Promise<void> }): PluginDeps => {
    const base = deps();
    return {
      ...base,
      pods: {
        ...base.pods,
        createLink: async (spec) => {
          await hooks.atCreate?.();
          return base.pods.createLink(spec);
        },
        listHostVeths: async (netns, bridge) => {
          await hooks.beforeList?.();
          return base.pods.listHostVeths(netns, bridge);
        },
        detachLink: async (_netns, name) => {
          swept.push(name);
          for (const k of [...attached.keys()]) if (`fnv-${k.split("/")[0]}` === name) attached.delete(k);
        },
      },
    };
  };
  beforeEach(() => {
    swept.length = 0;
  });

  it("an ADD that runs to its end while GC is about to list veths keeps its veth and its address", async () => {
    let add: Awaited<ReturnType<typeof handleCni>> | undefined;
    const gc = await handleCni({ CNI_COMMAND: "GC" }, gcConf(), withHooks({ beforeList: async () => void (add = await handleCni(env("ADD", "c-new"), conf(), deps())) }));
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(add?.exitCode, add?.stdout).toBe(0);
    expect(swept).toEqual([]);
    expect([...attached.keys()]).toEqual(["c-new/eth0"]);
    expect(held()).toEqual(["c-new 10.244.1.2 attached"]);
  });

  it("a GC that runs to its end while an ADD creates its veth: the ADD either keeps veth and address, or fails 11 with neither", async () => {
    let gc: Awaited<ReturnType<typeof handleCni>> | undefined;
    const add = await handleCni(env("ADD", "c-new"), conf(), withHooks({ atCreate: async () => void (gc = await handleCni({ CNI_COMMAND: "GC" }, gcConf(), withHooks({}))) }));
    expect(gc?.exitCode, gc?.stdout).toBe(0);
    if (add.exitCode === 0) {
      expect([...attached.keys()]).toEqual(["c-new/eth0"]);
      expect(held()).toEqual(["c-new 10.244.1.2 attached"]);
    } else {
      expect(JSON.parse(add.stdout)).toMatchObject({ code: 11 });
      expect([...attached.keys()]).toEqual([]);
      expect(held()).toEqual([]);
    }
  });
});
