import { canonicalIp, safeParseInterfaceAddress, formatInterfaceAddress } from "@flatnet/core";
import { CniCode, CniError } from "./errors.ts";
import { type Invocation, podTarget, requireNodeNetns, resolveSubnet, withStore } from "./invocation.ts";
import { parsePrevResult } from "./result.ts";

function mismatch(message: string): CniError {
  return new CniError(CniCode.CheckFailed, message);
}

function canonicalAddress(text: string): string {
  const parsed = safeParseInterfaceAddress(text);
  return parsed.success ? formatInterfaceAddress(parsed.data) : text;
}

/**
 * CHECK: the pod interface named in prevResult exists in CNI_NETNS, is up, has the pod MTU, every address prevResult
 * gives it and a default route per gateway; the host veth exists; IPAM still holds each address for this attachment.
 */
export async function cmdCheck(inv: Invocation): Promise<void> {
  const { env, netconf, deps } = inv;
  const nodeNetns = requireNodeNetns(inv);
  if (netconf.prevResult === undefined) throw new CniError(CniCode.InvalidNetworkConfig, "CHECK needs prevResult (the result of the ADD)");
  const prev = parsePrevResult(netconf.prevResult, netconf.cniVersion);
  const netns = env.netns ?? "";
  const index = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifName && i.sandbox === netns);
  if (index < 0) throw mismatch(`prevResult has no interface ${JSON.stringify(env.ifName)} in sandbox ${JSON.stringify(netns)}`);
  const ips = (prev.ips ?? []).filter((ip) => ip.interface === index);
  if (ips.length === 0) throw mismatch(`prevResult gives interface ${JSON.stringify(env.ifName)} no address`);
  const subnet = resolveSubnet(inv);

  const held = await withStore(inv, (store) => store.get({ containerId: env.containerId, ifName: env.ifName }).map((a) => `${a.ip}/${a.prefix}`));
  for (const ip of ips) {
    if (!held.includes(canonicalAddress(ip.address))) {
      throw mismatch(`IPAM holds no reservation of ${ip.address} for container ${env.containerId} ${env.ifName} (it holds ${JSON.stringify(held)})`);
    }
  }

  if (!deps.exists(netns)) throw mismatch(`network namespace ${JSON.stringify(netns)} does not exist`);
  const hostIfName = deps.pods.hostVethName(env.containerId, env.ifName);
  const [pod, host] = await Promise.all([
    deps.pods.inspect(podTarget(netns), env.ifName),
    deps.pods.inspect({ name: nodeNetns }, hostIfName),
  ]);
  if (pod === undefined) throw mismatch(`interface ${JSON.stringify(env.ifName)} does not exist in ${JSON.stringify(netns)}`);
  if (host === undefined) throw mismatch(`host interface ${JSON.stringify(hostIfName)} of container ${env.containerId} does not exist in ${nodeNetns}`);
  if (!pod.up) throw mismatch(`interface ${JSON.stringify(env.ifName)} in ${JSON.stringify(netns)} is down`);
  if (pod.mtu !== subnet.mtu) throw mismatch(`interface ${JSON.stringify(env.ifName)} has MTU ${pod.mtu}; the pod MTU is ${subnet.mtu}`);
  const have = pod.addresses.map(canonicalAddress);
  for (const ip of ips) {
    if (!have.includes(canonicalAddress(ip.address))) {
      throw mismatch(`interface ${JSON.stringify(env.ifName)} lacks address ${ip.address} (it has ${JSON.stringify(pod.addresses)})`);
    }
    if (ip.gateway === undefined) continue;
    const dst = ip.address.includes(":") ? "::/0" : "0.0.0.0/0";
    const gateway = canonicalIp(ip.gateway);
    if (!pod.routes.some((r) => r.dst === dst && r.gateway !== undefined && canonicalIp(r.gateway) === gateway)) {
      throw mismatch(`interface ${JSON.stringify(env.ifName)} has no route ${dst} via ${ip.gateway}`);
    }
  }
}
