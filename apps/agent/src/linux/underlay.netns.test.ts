import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { underlayChoice } from "../cli/agent.ts";
import { findUnderlayDevice, type UnderlayChoice, UnderlayError } from "./underlay.ts";

// The underlay device is found, not fixed (issue 11 item 6), in namespaces this test creates (prefix fn-rt-u):
// a node whose NICs are ens5 (node IP, default route) and ens6 (a second network), and a bare node with no route.

const PREFIX = "fn-rt-u";
const NODE = `${PREFIX}node`;
const BARE = `${PREFIX}bare`;
const AGENT_DIR = fileURLToPath(new URL("../../", import.meta.url));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot) console.warn("underlay.netns.test: kernel tests need root (network namespaces); skipped");

function ip(netns: string, lines: string[]): void {
  if (!netns.startsWith(PREFIX)) throw new Error(`namespace "${netns}" must start with "${PREFIX}"`);
  const run = spawnSync("ip", ["-n", netns, "-batch", "-"], { input: lines.join("\n") + "\n", encoding: "utf8" });
  if (run.status !== 0) throw new Error(`ip -n ${netns} -batch: ${run.stderr}`);
}

function createNetns(name: string, lines: string[]): void {
  spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
  const add = spawnSync("ip", ["netns", "add", name], { encoding: "utf8" });
  if (add.status !== 0) throw new Error(`ip netns add ${name}: ${add.stderr}`);
  ip(name, ["link set lo up", ...lines]);
}

describe("underlayChoice: the agent's flags in the order they are tried", () => {
  it.each<[string, Parameters<typeof underlayChoice>[0], UnderlayChoice]>([
    ["nothing given", { underlayIp: [] }, { ips: [] }],
    ["the node IP (the DaemonSet's status.hostIP)", { underlayIp: [], nodeIp: "10.20.0.5" }, { ips: ["10.20.0.5"] }],
    ["--underlay-ip wins over the node IP", { underlayIp: ["192.168.50.5"], nodeIp: "10.20.0.5" }, { ips: ["192.168.50.5"] }],
    ["device and can-reach passed on", { underlayIp: [], underlayDevice: "ens6", underlayCanReach: "192.168.60.7" }, { ips: [], device: "ens6", canReach: "192.168.60.7" }],
  ])("%s", (_label, options, expected) => {
    expect(underlayChoice(options)).toEqual(expected);
  });
});

describe.skipIf(!isRoot)("findUnderlayDevice in a node namespace", () => {
  beforeAll(() => {
    createNetns(NODE, [
      // veth pairs with both ends here and up, so ens5/ens6 have carrier (no dummy module on every kernel).
      "link add ens5 type veth peer name ens5p",
      "link add ens6 type veth peer name ens6p",
      "link set ens5p up",
      "link set ens6p up",
      "addr add 10.20.0.5/24 dev ens5",
      "addr add 192.168.50.5/24 dev ens6",
      "link set ens5 up",
      "link set ens6 up",
      "route add default via 10.20.0.1 dev ens5",
      "route add 192.168.60.0/24 via 192.168.50.1 dev ens6",
    ]);
    createNetns(BARE, ["link add ens5 type veth peer name ens5p", "link set ens5p up", "addr add 10.30.0.5/24 dev ens5", "link set ens5 up"]);
  });
  afterAll(() => {
    for (const name of [NODE, BARE]) spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
  });

  it.each<[string, UnderlayChoice, { device: string; how: string }]>([
    ["nothing given: the default route's device", {}, { device: "ens5", how: "the default route's device (IPv4)" }],
    ["the node IP: the interface holding it", { ips: ["10.20.0.5"] }, { device: "ens5", how: "the interface holding 10.20.0.5" }],
    ["an underlay IP on the second NIC", { ips: ["192.168.50.5"] }, { device: "ens6", how: "the interface holding 192.168.50.5" }],
    ["--underlay-can-reach a peer behind ens6", { canReach: "192.168.60.7" }, { device: "ens6", how: "the route to 192.168.60.7 (--underlay-can-reach)" }],
    ["--underlay-can-reach an address behind the default route", { canReach: "198.51.100.1" }, { device: "ens5", how: "the route to 198.51.100.1 (--underlay-can-reach)" }],
    ["--underlay-device wins over everything", { device: "ens6", canReach: "198.51.100.1", ips: ["10.20.0.5"] }, { device: "ens6", how: "--underlay-device" }],
    ["--underlay-can-reach wins over the node IP", { canReach: "192.168.60.7", ips: ["10.20.0.5"] }, { device: "ens6", how: "the route to 192.168.60.7 (--underlay-can-reach)" }],
    ["a node IP no interface holds: the default route's device", { ips: ["10.99.0.1"] }, { device: "ens5", how: "the default route's device (IPv4)" }],
  ])("%s", async (_label, choice, expected) => {
    expect(await findUnderlayDevice(NODE, choice)).toEqual(expected);
  });

  it.each<[string, string, UnderlayChoice, string]>([
    ["a device that is not there (eth0 on an ens5 node)", NODE, { device: "eth0" }, `underlay device "eth0" (--underlay-device) does not exist in namespace "${NODE}" (it has: ens5, ens5p, ens6, ens6p)`],
    ["can-reach that is not an address", NODE, { canReach: "peer-1" }, `--underlay-can-reach "peer-1" is not an IP address`],
    ["can-reach with no route", BARE, { canReach: "198.51.100.1" }, `no route to 198.51.100.1 (--underlay-can-reach) in namespace "${BARE}": RTNETLINK answers: Network is unreachable`],
    [
      "no device holds the node IP and there is no default route",
      BARE,
      { ips: ["10.20.0.5"] },
      `no underlay device found in namespace "${BARE}": no interface holds 10.20.0.5; no default route (IPv4 or IPv6); name it with --underlay-device <dev> or --underlay-can-reach <peer IP>`,
    ],
    ["nothing given and no default route", BARE, {}, `no underlay device found in namespace "${BARE}": no default route (IPv4 or IPv6); name it with --underlay-device <dev> or --underlay-can-reach <peer IP>`],
  ])("fails clearly: %s", async (_label, netns, choice, message) => {
    const error = await findUnderlayDevice(netns, choice).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnderlayError);
    expect(error).toMatchObject({ code: "ERR_UNDERLAY", message });
  });

  it("the agent started without --underlay-device on a node whose NIC is not eth0 fails with that message, no stack trace", () => {
    const dir = mkdtempSync(join(tmpdir(), "fn-rt-underlay-"));
    try {
      const run = spawnSync(
        process.execPath,
        ["--import", "tsx", "src/main.ts", "agent", "--node", "n1", "--netns", BARE, "--node-ip", "10.20.0.5", "--store", join(dir, "store.db"), "--socket", join(dir, "a.sock")],
        { cwd: AGENT_DIR, encoding: "utf8", timeout: 60_000 },
      );
      expect({ status: run.status, stderr: run.stderr }).toEqual({
        status: 1,
        stderr: `flatnet agent: no underlay device found in namespace "${BARE}": no interface holds 10.20.0.5; no default route (IPv4 or IPv6); name it with --underlay-device <dev> or --underlay-can-reach <peer IP>\n`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
