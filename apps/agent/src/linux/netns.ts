import { assertNetnsName, KernelCommandError, runCommand } from "./exec.ts";

// Named network namespaces themselves (/run/netns): list, add, delete, attach a process's, read addresses.

async function ip(args: readonly string[], input?: string): Promise<string> {
  const result = await runCommand("ip", args, input);
  if (result.exitCode !== 0) throw new KernelCommandError(["ip", ...args], result.exitCode, result.stderr);
  return result.stdout;
}

/** The namespaces present now (`ip netns list`), names only. */
export async function listNamespaces(): Promise<string[]> {
  return (await ip(["netns", "list"]))
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
}

/** Adds empty named namespaces in one `ip -batch` process. */
export function addNamespaces(names: readonly string[]): Promise<void> {
  return namespaceBatch("add", names);
}

/** Deletes named namespaces in one `ip -batch` process (their links, routes and veth peers go with them). */
export function removeNamespaces(names: readonly string[]): Promise<void> {
  return namespaceBatch("del", names);
}

async function namespaceBatch(verb: "add" | "del", names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  names.forEach(assertNetnsName);
  await ip(["-batch", "-"], names.map((name) => `netns ${verb} ${name}`).join("\n") + "\n");
}

/** PIDs of processes living in a namespace (`ip netns pids`); none when it is not there. */
export async function namespacePids(name: string): Promise<number[]> {
  assertNetnsName(name);
  const result = await runCommand("ip", ["netns", "pids", name]);
  return result.stdout
    .split("\n")
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** Names the network namespace of process `pid` as `name` (`ip netns attach`), e.g. a container's. */
export async function attachNamespace(name: string, pid: number): Promise<void> {
  assertNetnsName(name);
  await ip(["netns", "attach", name, String(pid)]);
}

/** The global-scope addresses of a device in a namespace. */
export async function globalAddresses(netns: string, device: string): Promise<string[]> {
  assertNetnsName(netns);
  const stdout = await ip(["-n", netns, "-j", "addr", "show", "dev", device, "scope", "global"]);
  // `ip -j` keeps an empty object for each address the scope filter left out.
  const links = JSON.parse(stdout) as { addr_info?: { local?: string }[] }[];
  return links.flatMap((link) => (link.addr_info ?? []).flatMap((info) => (info.local === undefined ? [] : [info.local])));
}
