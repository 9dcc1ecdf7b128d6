// The conflist flatnet ships, read by a real runtime's libcni: Debian's podman 4.3 (libcni 1.1.x, which reads
// cniVersion alone and knows results up to 1.0.0) attaches a container through the lab's installed conflist with
// the ConfigMap's chain (Debian's portmap 1.1.1) and detaches it. The older conflist (cniVersion 1.1.0) fails here.
// Anything global podman would touch is moved into a temp dir (--root, --runroot, --tmpdir, containers.conf), except
// libcni's result cache /var/lib/cni, which podman 4 does not let one move: the test removes what it wrote there.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installCni, SHIPPED_CNI_VERSIONS } from "../../apps/agent/src/cni/runtime.ts";
import { IpamStore } from "../../apps/agent/src/ipam-store/store.ts";
import { createNamespaces, ensurePluginBuilt, haveReference, isRoot, linksOf, PLUGIN, REFERENCE_PLUGINS, sh, tempDir } from "./helpers.ts";

const NODE = "fn-rt-node";
const NETWORK = "fn-rt-net";
const POOL = "10.91.0.0/24";
const IMAGE = "localhost/fn-rt-busybox:1";
const LIBCNI_CACHE = "/var/lib/cni";

const havePodman = sh("podman", ["--version"]).status === 0;
const haveBusybox = existsSync("/bin/busybox");
const ready = isRoot && haveReference && havePodman && haveBusybox && existsSync(join(REFERENCE_PLUGINS, "portmap"));
if (!ready) console.log("skipping the podman CNI test: it needs root, podman, busybox-static and containernetworking-plugins in /usr/lib/cni");

/** The ConfigMap's conflist (deploy/configmap.yaml cni-conf.json). */
function deployConflist(): { cniVersion: string; cniVersions: string[]; plugins: { type: string }[] } {
  const text = readFileSync(fileURLToPath(new URL("../../deploy/configmap.yaml", import.meta.url)), "utf8");
  const configMap = parseAllDocuments(text).map((d) => d.toJS() as { data?: Record<string, string> })[0];
  return JSON.parse(configMap!.data!["cni-conf.json"]!);
}

describe("the ConfigMap and the lab write one conflist", () => {
  it("the same versions: cniVersion for libcni 1.1.x, cniVersions for libcni >= 1.2", () => {
    const { cniVersion, cniVersions } = deployConflist();
    expect({ cniVersion, cniVersions }).toEqual(SHIPPED_CNI_VERSIONS);
  });
});

describe.skipIf(!ready)("Debian's podman (libcni 1.1.x) runs a container through the installed conflist", { timeout: 180_000 }, () => {
  const dir = tempDir("fn-rt-podman-");
  let cleanup = () => {};
  let cacheExisted = true;
  const podman = (args: string[]) => {
    const global = ["--root", join(dir.path, "root"), "--runroot", join(dir.path, "runroot"), "--tmpdir", join(dir.path, "tmp"), "--storage-driver", "vfs"];
    // The node is a namespace: podman (and so libcni and the plugins it runs) acts inside it, as on the node.
    return sh("nsenter", [`--net=/run/netns/${NODE}`, "env", `CONTAINERS_CONF=${join(dir.path, "containers.conf")}`, "podman", ...global, ...args]);
  };

  beforeAll(() => {
    ensurePluginBuilt();
    cacheExisted = existsSync(LIBCNI_CACHE);
    cleanup = createNamespaces([NODE]);
    // The lab's install (bin/flatnet, net.d/10-flatnet.conflist) with the ConfigMap's chain after flatnet.
    const chain = deployConflist().plugins.filter((p) => p.type !== "flatnet");
    expect(chain.map((p) => p.type)).toEqual(["portmap"]);
    installCni({ root: join(dir.path, "cni"), nodeNetns: NODE, podCidrs: [POOL], networkName: NETWORK, pluginBinary: PLUGIN, chain });
    writeFileSync(
      join(dir.path, "containers.conf"),
      [
        "[containers]",
        // Below this machine's hard limits: without CAP_SYS_RESOURCE runc may not raise them to podman's defaults.
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        "[network]",
        'network_backend = "cni"',
        `network_config_dir = "${join(dir.path, "cni", "net.d")}"`,
        `cni_plugin_dirs = ["${join(dir.path, "cni", "bin")}", "${REFERENCE_PLUGINS}"]`,
        "[engine]",
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        "",
      ].join("\n"),
    );
    // An image with no registry: busybox-static as a one-layer tarball.
    const rootfs = join(dir.path, "rootfs");
    mkdirSync(join(rootfs, "bin"), { recursive: true });
    copyFileSync("/bin/busybox", join(rootfs, "bin", "busybox"));
    for (const applet of ["sh", "ip"]) symlinkSync("busybox", join(rootfs, "bin", applet));
    expect(sh("tar", ["-C", rootfs, "-cf", join(dir.path, "rootfs.tar"), "."]).status).toBe(0);
    const imported = podman(["import", join(dir.path, "rootfs.tar"), IMAGE]);
    expect(imported.status, imported.stderr).toBe(0);
  }, 120_000);

  afterAll(() => {
    podman(["rm", "--all", "--force"]);
    cleanup();
    // libcni's cache: only what this network left, and the directories if this test made them.
    const results = join(LIBCNI_CACHE, "results");
    if (existsSync(results)) for (const f of readdirSync(results)) if (f.startsWith(`${NETWORK}-`)) rmSync(join(results, f), { force: true });
    if (!cacheExisted) for (const d of [results, LIBCNI_CACHE]) if (existsSync(d) && readdirSync(d).length === 0) rmdirSync(d);
    dir.remove();
  });

  it("ADD gives the container an address of the node's pool; DEL leaves no veth and no reservation", () => {
    const run = podman(["run", "--rm", "--network", NETWORK, IMAGE, "/bin/ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    expect(run.status, run.stderr).toBe(0);
    expect(/inet (\S+)/.exec(run.stdout)?.[1]).toBe("10.91.0.2/24");
    expect(JSON.parse(readFileSync(join(dir.path, "cni", "net.d", "10-flatnet.conflist"), "utf8"))).toMatchObject(SHIPPED_CNI_VERSIONS);

    expect(linksOf(NODE).filter((name) => name !== "lo" && name !== "fn-br0")).toEqual([]); // no pod veth left
    const store = IpamStore.open(join(dir.path, "cni", "ipam", NETWORK, "ipam.db"));
    try {
      expect(store.list()).toEqual([]);
    } finally {
      store.close();
    }
    expect(podman(["ps", "--all", "--quiet"]).stdout.trim()).toBe("");
  });
});
