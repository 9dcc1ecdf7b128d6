import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PodSpecError, attachPod, detachPod, ensureBridge, hostVethName, inspectPod } from "../../apps/agent/src/linux/index.ts";
import { createNetns, createNode, deleteNetns, ipJson, sh, skipReason } from "./netns.ts";

const NODE = "fn-ta-pnode";
const POD_A = "fn-ta-pa";
const POD_B = "fn-ta-pb";
const GATEWAYS = ["10.244.1.1/24", "fd00:10:244:1::1/64"];

describe.skipIf(skipReason !== undefined)("pod attachment in namespaces", () => {
  let holder: ReturnType<typeof spawn> | undefined;

  beforeAll(() => {
    createNode(NODE, ["172.31.0.11/24"]);
    createNetns(POD_A);
    createNetns(POD_B);
  });
  afterAll(() => {
    if (holder?.pid !== undefined) process.kill(holder.pid, "SIGKILL");
    for (const ns of [POD_A, POD_B, NODE]) deleteNetns(ns);
  });

  it("ensureBridge creates fn-br0 with the gateways and MTU, then finds nothing to change", async () => {
    const first = await ensureBridge(NODE, { gateways: GATEWAYS, mtu: 1450 });
    expect(first).toMatchObject({ name: "fn-br0", mtu: 1450, addresses: GATEWAYS, changed: true });
    expect((await ensureBridge(NODE, { gateways: GATEWAYS, mtu: 1450 })).changed).toBe(false);
    const [link] = ipJson<{ mtu: number; address: string; addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(NODE, ["addr", "show", "dev", "fn-br0"]);
    expect(link?.mtu).toBe(1450);
    expect(link?.address).toBe(first.mac);
    expect(link?.addr_info.filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`)).toEqual(GATEWAYS);
    // Without this a new bridge holds IPv6 neighbour solicitations for 1-2 s (its link-local address is tentative).
    expect(sh("ip", ["netns", "exec", NODE, "cat", "/proc/sys/net/ipv6/conf/fn-br0/accept_dad"]).trim()).toBe("0");
  });

  it("attaches a pod by namespace name: addresses, default routes, MTU, reachable gateway", async () => {
    const attached = await attachPod({
      nodeNetns: NODE, podNetns: { name: POD_A }, containerId: "c-aaaa", ifName: "eth0",
      addresses: ["10.244.1.2/24", "fd00:10:244:1::2/64"], gateways: ["10.244.1.1", "fd00:10:244:1::1"], mtu: 1450,
    });
    expect(attached).toMatchObject({ hostIfName: hostVethName("c-aaaa", "eth0"), podIfName: "eth0", mtu: 1450 });
    expect(attached.hostMac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const state = await inspectPod({ name: POD_A }, "eth0");
    expect(state).toEqual({
      ifName: "eth0", mac: attached.podMac, mtu: 1450, up: true,
      addresses: ["10.244.1.2/24", "fd00:10:244:1::2/64"],
      routes: [
        { dst: "0.0.0.0/0", gateway: "10.244.1.1" },
        { dst: "10.244.1.0/24" },
        { dst: "fd00:10:244:1::/64" },
        { dst: "::/0", gateway: "fd00:10:244:1::1" },
      ],
    });
    const [host] = ipJson<{ master: string; mtu: number }[]>(NODE, ["link", "show", "dev", attached.hostIfName]);
    expect(host).toMatchObject({ master: "fn-br0", mtu: 1450 });
    expect(sh("ip", ["netns", "exec", POD_A, "ping", "-c", "1", "-w", "10", "10.244.1.1"])).toContain("1 received");
  });

  it("attaches a pod by /proc/PID/ns/net path (nsenter), and pods on the bridge reach each other", async () => {
    holder = spawn("ip", ["netns", "exec", POD_B, "sleep", "600"], { stdio: "ignore" });
    const path = `/proc/${holder.pid}/ns/net`;
    // `ip netns exec` execs sleep in place: wait until the process is in the pod namespace.
    const podIno = sh("stat", ["-L", "-c", "%i", `/run/netns/${POD_B}`]).trim();
    for (let i = 0; i < 2000 && sh("stat", ["-L", "-c", "%i", path]).trim() !== podIno; i++) await new Promise((r) => setImmediate(r));
    expect(sh("stat", ["-L", "-c", "%i", path]).trim()).toBe(podIno);

    const attached = await attachPod({
      nodeNetns: NODE, podNetns: { path }, containerId: "c-bbbb", ifName: "eth0",
      addresses: ["10.244.1.3/24"], gateways: ["10.244.1.1"], mtu: 1450,
    });
    const state = await inspectPod({ path }, "eth0");
    expect(state?.addresses).toEqual(["10.244.1.3/24"]);
    expect(state?.mac).toBe(attached.podMac);
    expect(await inspectPod({ name: POD_B }, "eth0")).toEqual(state);
    expect(sh("ip", ["netns", "exec", POD_B, "ping", "-c", "1", "-w", "10", "10.244.1.2"])).toContain("1 received");
  });

  it("a retried attach of the same container replaces its leftover veth", async () => {
    const spec = { nodeNetns: NODE, podNetns: { name: POD_A }, containerId: "c-retry", ifName: "net1", addresses: ["10.244.1.9/24"], gateways: [], mtu: 1450 };
    await attachPod(spec);
    const again = await attachPod(spec);
    expect((await inspectPod({ name: POD_A }, "net1"))?.mac).toBe(again.podMac);
    expect(await detachPod({ nodeNetns: NODE, containerId: "c-retry", ifName: "net1" })).toEqual({ removed: true });
  });

  it("detach removes both ends and is idempotent; inspect then finds nothing", async () => {
    expect(await detachPod({ nodeNetns: NODE, containerId: "c-aaaa", ifName: "eth0" })).toEqual({ removed: true });
    expect(await detachPod({ nodeNetns: NODE, containerId: "c-aaaa", ifName: "eth0" })).toEqual({ removed: false });
    expect(await inspectPod({ name: POD_A }, "eth0")).toBeUndefined();
    expect(await inspectPod({ name: "fn-ta-no-such-ns" }, "eth0")).toBeUndefined();
    expect(await detachPod({ nodeNetns: "fn-ta-no-such-ns", containerId: "c-aaaa", ifName: "eth0" })).toEqual({ removed: false });
  });

  it("a failed pod-side step leaves no host veth behind", async () => {
    const spec = { nodeNetns: NODE, podNetns: { name: POD_A }, containerId: "c-fail", ifName: "eth0", addresses: ["10.244.1.4/24"], gateways: ["10.244.1.1"], mtu: 1450 };
    // The gateway's family is fine but the address collides with nothing: make the route fail instead by a bad gateway.
    const error = await attachPod({ ...spec, gateways: ["10.99.0.1"] }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ERR_KERNEL_COMMAND" });
    expect(ipJson<unknown[]>(NODE, ["link", "show", "type", "veth"]).map((l) => (l as { ifname: string }).ifname)).not.toContain(hostVethName("c-fail", "eth0"));
  });

  it.each([
    [{ ifName: "this-name-is-too-long" }, /interface name "this-name-is-too-long"/],
    [{ ifName: "eth0#" }, /interface name "eth0#" is refused/],
    [{ bridge: "br\"0" }, /interface name "br\\"0" is refused/],
    [{ mtu: 40 }, /MTU 40 must be an integer in 68-65535/],
    [{ addresses: ["10.244.1.5"] }, /pod address "10.244.1.5" must be address\/prefix/],
    [{ addresses: ["10.244.1.5/24", "10.244.1.6/24"] }, /at most one per family/],
    [{ gateways: ["fd00::1"] }, /gateway "fd00::1" has no pod address of its family/],
    [{ containerId: "" }, /container ID "" must not be empty/],
    [{ podNetns: { name: "../etc" } }, /network namespace name "..\/etc"/],
    [{ podNetns: { path: "proc/1/ns/net" } }, /network namespace path "proc\/1\/ns\/net" is refused: a network namespace path is absolute/],
    [{ podNetns: { path: "/run/netns/x mtu 1" } }, /network namespace path "\/run\/netns\/x mtu 1" is refused: .* without whitespace or control characters/],
  ])("refuses a bad attachment %o before touching the kernel", async (override, message) => {
    const spec = { nodeNetns: NODE, podNetns: { name: POD_A }, containerId: "c-bad", ifName: "eth0", addresses: ["10.244.1.5/24"], gateways: ["10.244.1.1"], mtu: 1450, ...override };
    await expect(attachPod(spec)).rejects.toThrow(message);
    expect(PodSpecError).toBeDefined();
  });
});
