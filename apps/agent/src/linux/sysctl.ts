import { KernelCommandError, execInNetns } from "./exec.ts";

export interface SysctlOptions {
  /** Skip keys the namespace does not have (IPv6 disabled, a device not there yet) instead of failing. */
  ignoreMissing?: boolean;
}

/**
 * Sets sysctls inside `netns` in one process (`ip netns exec NS sysctl -w ...`). Keys in slash form
 * (`net/ipv6/conf/flatnet.1/accept_ra`) keep dots in device names literal.
 */
export async function setSysctls(netns: string, values: Record<string, string>, options: SysctlOptions = {}): Promise<void> {
  const entries = Object.entries(values);
  if (entries.length === 0) return;
  for (const [key, value] of entries) {
    if (!/^[A-Za-z0-9_./-]+$/.test(key) || !/^[A-Za-z0-9_.-]+$/.test(value)) {
      throw new KernelCommandError(["sysctl", `${key}=${value}`], 2, `sysctl "${key}=${value}" must be a plain key and value`);
    }
  }
  const args = ["-q", ...(options.ignoreMissing ? ["-e"] : []), "-w", ...entries.map(([k, v]) => `${k}=${v}`)];
  const result = await execInNetns({ name: netns }, "sysctl", args);
  if (result.exitCode === 0) return;
  // An unprivileged container (the DaemonSet's agent) sees /proc/sys read-only: a value already right is no error.
  const wrong = await differingSysctls(netns, entries, options);
  if (wrong.length === 0) return;
  const detail = wrong.map(({ key, want, have }) => `${key} is ${have === undefined ? "unreadable" : JSON.stringify(have)}, flatnet needs ${JSON.stringify(want)}`).join("; ");
  throw new KernelCommandError(
    ["ip", "netns", "exec", netns, "sysctl", ...args],
    result.exitCode,
    `${result.stderr.trim()}: ${detail} (where /proc/sys is read-only, as in an unprivileged container, set it on the node, e.g. in /etc/sysctl.d)`,
  );
}

/** The keys whose current value differs from the wanted one (a missing key counts only without ignoreMissing). */
async function differingSysctls(netns: string, entries: [string, string][], options: SysctlOptions): Promise<{ key: string; want: string; have?: string }[]> {
  const out: { key: string; want: string; have?: string }[] = [];
  for (const [key, want] of entries) {
    const read = await execInNetns({ name: netns }, "sysctl", ["-n", key]);
    const have = read.exitCode === 0 ? read.stdout.trim() : undefined;
    if (have === want || (have === undefined && options.ignoreMissing)) continue;
    out.push({ key, want, ...(have === undefined ? {} : { have }) });
  }
  return out;
}

/** Turns on IPv4 and IPv6 forwarding in the node namespace (new namespaces start with both off). */
export function enableForwarding(netns: string): Promise<void> {
  return setSysctls(netns, { "net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1" }, { ignoreMissing: true });
}
