import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pick } from "../linux/read.ts";
import { addNetworkList, type Conflist, delNetworkList, type ExecutorOptions, type RuntimeConf } from "./executor.ts";

/** A node's CNI installation as a runtime sees it: plugin binaries, conf dir, result cache, and the node's namespace. */
export interface CniInstall {
  binDir: string;
  confDir: string;
  cacheDir: string;
  dataDir: string;
  nodeNetns: string;
}

export interface InstallOptions {
  /** Directory holding bin/, net.d/, cache/ and ipam/ (the lab's state dir for this node). */
  root: string;
  nodeNetns: string;
  /** The node's pod CIDRs (one per family), or `subnetFile` where the agent writes them. */
  podCidrs?: string[];
  subnetFile?: string;
  mtu?: number;
  networkName?: string;
  /** One version only (tests); default SHIPPED_CNI_VERSIONS, which every runtime's libcni accepts. */
  cniVersion?: string;
  /** The plugin binary to install (default: the one `npm run build` produced, dist/cni/flatnet). */
  pluginBinary?: string;
  /**
   * The node agent's API socket: the plugin forwards each call there (the fast path, docs/cni.md) and does the work
   * itself when the agent is not listening.
   */
  agentSocket?: string;
  /**
   * Install the optional native client (dist/cni/flatnet-client, built when a C compiler is there) as bin/flatnet and
   * the Bun binary beside it as bin/flatnet-bun: the fast path without the Bun runtime's start-up (docs/cni.md).
   * "if-built": when it was built, else the Bun binary alone.
   */
  nativeClient?: boolean | "if-built";
  /** Plugins chained after flatnet (e.g. `{ type: "portmap", capabilities: { portMappings: true } }`). */
  chain?: Conflist["plugins"];
}

/**
 * The versions of every conflist flatnet writes (deploy/configmap.yaml too): libcni 1.1.x (podman 4, containerd
 * 1.6/1.7) reads cniVersion and ignores cniVersions; libcni >= 1.2 (containerd 2) runs at 1.1.0, with GC and STATUS.
 */
export const SHIPPED_CNI_VERSIONS = { cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"] } as const;

/** The built plugin binary: dist/cni/flatnet next to the bundle (dist/main.js) or under the package from the sources. */
export function defaultPluginBinary(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "cni", "flatnet"), join(here, "..", "..", "dist", "cni", "flatnet")];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`the flatnet CNI binary is not built (looked in ${candidates.join(", ")}); run "npm run build -w @flatnet/agent"`);
  return found;
}

/** Installs the plugin as a node has it: <root>/bin/flatnet and <root>/net.d/10-flatnet.conflist; returns the layout. */
export function installCni(options: InstallOptions): CniInstall {
  const install: CniInstall = {
    binDir: join(options.root, "bin"),
    confDir: join(options.root, "net.d"),
    cacheDir: join(options.root, "cache"),
    dataDir: join(options.root, "ipam"),
    nodeNetns: options.nodeNetns,
  };
  for (const dir of [install.binDir, install.confDir, install.cacheDir, install.dataDir]) mkdirSync(dir, { recursive: true });
  const source = options.pluginBinary ?? defaultPluginBinary();
  const client = join(dirname(source), "flatnet-client");
  if (options.nativeClient === true || (options.nativeClient === "if-built" && existsSync(client))) {
    if (!existsSync(client)) throw new Error(`the native CNI client is not built (${client}); it needs a C compiler at "npm run build -w @flatnet/agent"`);
    installFile(source, join(install.binDir, "flatnet-bun"));
    installFile(client, join(install.binDir, "flatnet"));
  } else {
    installFile(source, join(install.binDir, "flatnet"));
    rmSync(join(install.binDir, "flatnet-bun"), { force: true });
  }
  const flatnet = { type: "flatnet", nodeNetns: options.nodeNetns, dataDir: install.dataDir, ...pick(options, ["podCidrs", "subnetFile", "mtu", "agentSocket"]) };
  const conflist = {
    ...(options.cniVersion === undefined ? SHIPPED_CNI_VERSIONS : { cniVersion: options.cniVersion }),
    name: options.networkName ?? "flatnet",
    plugins: [flatnet, ...(options.chain ?? [])],
  };
  const path = join(install.confDir, "10-flatnet.conflist");
  writeFileSync(`${path}.tmp`, JSON.stringify(conflist, null, 2) + "\n");
  renameSync(`${path}.tmp`, path); // a runtime never reads a half-written file
  return install;
}

/** Copies `source` to `target` when it changed, through a rename: a running plugin keeps its old inode. */
function installFile(source: string, target: string): void {
  const [from, to] = [statSync(source), existsSync(target) ? statSync(target) : undefined];
  if (to === undefined || to.size !== from.size || to.mtimeMs < from.mtimeMs) {
    copyFileSync(source, `${target}.tmp`);
    renameSync(`${target}.tmp`, target);
  }
}

/** The first conflist of the conf dir in lexical order, as kubelet/containerd pick the default network. */
export function loadConflist(install: CniInstall): Conflist {
  const files = readdirSync(install.confDir).filter((f) => f.endsWith(".conflist")).sort();
  const first = files[0];
  if (first === undefined) throw new Error(`no .conflist in ${install.confDir}`);
  return JSON.parse(readFileSync(join(install.confDir, first), "utf8")) as Conflist;
}

function executorOptions(install: CniInstall): ExecutorOptions {
  return { binDirs: [install.binDir, "/usr/lib/cni", "/opt/cni/bin"], cacheDir: install.cacheDir, nodeNetns: install.nodeNetns };
}

export interface PodCniRef {
  containerId: string;
  /** The pod's namespace path (/run/netns/NAME). */
  netns: string;
  ifName?: string;
}

/** What cniAdd reports: the pod's addresses ("10.244.1.5/24") and the full CNI result. */
export interface CniAddResult {
  addresses: string[];
  gateways: string[];
  result: Record<string, unknown>;
}

/** Attaches a pod as a runtime would: runs the installed conflist's ADD; on failure runs DEL (SPEC: clean up) and throws. */
export async function cniAdd(install: CniInstall, pod: PodCniRef): Promise<CniAddResult> {
  const list = loadConflist(install);
  const rt: RuntimeConf = { containerId: pod.containerId, netns: pod.netns, ifName: pod.ifName ?? "eth0" };
  try {
    const result = await addNetworkList(list, rt, executorOptions(install));
    const ips = (result.ips ?? []) as { address: string; gateway?: string }[];
    return { addresses: ips.map((ip) => ip.address), gateways: ips.flatMap((ip) => (ip.gateway ? [ip.gateway] : [])), result };
  } catch (error) {
    await delNetworkList(list, rt, executorOptions(install)).catch(() => undefined);
    throw error;
  }
}
