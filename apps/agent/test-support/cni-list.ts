// The runtime side of CNI that flatnet's product never calls (CHECK and GC of a whole list, as libcni does them):
// the tests drive plugins through it; the lab's runtime (src/cni/runtime.ts) only adds and deletes.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CachedAttachment,
  CniPluginError,
  type Conflist,
  delNetworkList,
  type ExecutorOptions,
  execPlugin,
  pluginConfig,
  readCachedResult,
  type RuntimeConf,
} from "../src/cni/executor.ts";
import { compareVersions, negotiateCniVersion } from "../src/cni/version.ts";

/** CHECK through the list in order with the cached ADD result as prevResult (skipped when the list disables CHECK). */
export async function checkNetworkList(list: Conflist, rt: RuntimeConf, options: ExecutorOptions): Promise<void> {
  if (list.disableCheck === true) return;
  const cached = readCachedResult(list, rt, options);
  if (cached === undefined) throw new CniPluginError(list.name, "CHECK", 3, `no cached result for container ${rt.containerId} ${rt.ifName}`);
  for (const plugin of list.plugins) await execPlugin("CHECK", pluginConfig(list, plugin, rt, cached, options.specVersion), rt, options);
}

function listCached(list: Conflist, options: ExecutorOptions): CachedAttachment[] {
  const dir = join(options.cacheDir, "results");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${list.name}-`))
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as CachedAttachment)
    .filter((c) => c.kind === "flatnet-cni-cache-v1" && c.networkName === list.name);
}

/** GC (libcni semantics): DEL every cached attachment not in `valid`, then GC each plugin with the valid list (1.1.0+). */
export async function gcNetworkList(list: Conflist, valid: { containerId: string; ifName: string }[], options: ExecutorOptions): Promise<void> {
  const keep = new Set(valid.map((v) => `${v.containerId}\0${v.ifName}`));
  const errors: Error[] = [];
  for (const cached of listCached(list, options)) {
    if (keep.has(`${cached.containerId}\0${cached.ifName}`)) continue;
    const rt: RuntimeConf = { containerId: cached.containerId, ifName: cached.ifName };
    if (cached.netns !== undefined) rt.netns = cached.netns;
    await delNetworkList(list, rt, options).catch((error: Error) => errors.push(error));
  }
  if (compareVersions(negotiateCniVersion(list, options.specVersion), "1.1.0") >= 0 && list.disableGC !== true) {
    const attachments = valid.map((v) => ({ containerID: v.containerId, ifname: v.ifName }));
    for (const plugin of list.plugins) {
      const conf = { ...pluginConfig(list, plugin, undefined, undefined, options.specVersion), "cni.dev/valid-attachments": attachments, "cni.dev/attachments": attachments };
      await execPlugin("GC", conf, undefined, options).catch((error: Error) => errors.push(error));
    }
  }
  if (errors.length > 0) throw errors[0];
}
