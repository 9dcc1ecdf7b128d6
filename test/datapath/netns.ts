import { execFileSync, spawnSync } from "node:child_process";

/** This suite's namespace prefix: nothing outside names starting with it is ever created or removed. */
export const PREFIX = "fn-ta-";

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
export const skipReason = isRoot ? undefined : "kernel tests need root (network namespaces); skipped";
if (skipReason) console.warn(`test/datapath: ${skipReason}`);

function checkName(name: string): void {
  if (!name.startsWith(PREFIX)) throw new Error(`test namespace "${name}" must start with "${PREFIX}"`);
}

/** Runs a command and returns stdout; throws with stderr on failure. */
export function sh(file: string, args: string[], input?: string): string {
  return execFileSync(file, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** Creates a fresh namespace (removing a leftover of the same name) with loopback up. */
export function createNetns(name: string): string {
  checkName(name);
  deleteNetns(name);
  sh("ip", ["netns", "add", name]);
  sh("ip", ["-n", name, "link", "set", "lo", "up"]);
  return name;
}

export function deleteNetns(name: string): void {
  checkName(name);
  spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
}

/**
 * A node namespace with an underlay veth `eth0` (its peer `ul0` stays in the same namespace, up, so eth0 has carrier)
 * carrying the given addresses.
 */
export function createNode(name: string, addresses: string[], mtu = 1500): string {
  createNetns(name);
  const lines = [`link add eth0 mtu ${mtu} type veth peer name ul0 mtu ${mtu}`, ...addresses.map((a) => `addr add ${a} dev eth0${a.includes(":") ? " nodad" : ""}`), "link set eth0 up", "link set ul0 up"];
  sh("ip", ["-n", name, "-batch", "-"], lines.join("\n") + "\n");
  return name;
}

export function ipJson<T>(netns: string, args: string[]): T {
  checkName(netns);
  return JSON.parse(sh("ip", ["-n", netns, "-json", ...args]) || "[]") as T;
}
