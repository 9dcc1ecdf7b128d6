// podman-cni: CNI ADD latency as podman's libcni drives it (Debian's podman 4, CNI backend, runc): `podman run
// --network flatnet` through the conflist `lab up --runtime podman` installed for node1, against `podman run --network`
// a Debian `bridge` + `host-local` conflist (portmap chained in both, as the shipped conflist does), interleaved in one
// run on the same node's podman. Each plugin binary libcni execs is a timing shim around the real one, so the figure
// is the plugin's ADD as the runtime waits for it (exec to exit), not the container start around it.
// Target (issue 11): flatnet's p50 <= 0.8x the reference's.
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { flatnet, isRoot, percentile, report, run } from "./lab-harness.mjs";

const N = Number(process.env.PODMAN_CNI_BENCH_N ?? 20);
const PREFIX = "fn-dp-b-";
const STATE_DIR = "/tmp/fn-dp-bench-podman-cni";
const NODE_NS = `${PREFIX}node1`;
const REF = "/usr/lib/cni";
const REF_NETWORK = "fn-dp-ref";

if (!isRoot()) {
  console.log("podman-cni bench skipped: it builds network namespaces and runs podman, which need root");
  process.exit(0);
}

const podmanDir = join(STATE_DIR, "podman", "node1");
const cniRoot = join(STATE_DIR, "cni", "node1");
const shimDir = join(STATE_DIR, "bench-shims");
const timings = join(STATE_DIR, "bench-timings.log");

/** The node's podman as the lab runs it (apps/agent/src/lab/podman.ts), with the shims as its CNI plugin dir. */
function podman(args) {
  const globals = ["--root", join(podmanDir, "root"), "--runroot", join(podmanDir, "run"), "--tmpdir", join(podmanDir, "tmp"), "--storage-driver", "vfs", "--network-config-dir", join(cniRoot, "net.d")];
  return run("nsenter", [`--net=/run/netns/${NODE_NS}`, "podman", ...globals, ...args], { env: { ...process.env, CONTAINERS_CONF: join(STATE_DIR, "bench-containers.conf") } });
}

function setUp() {
  flatnet(["lab", "up", "--runtime", "podman", "--nodes", "1", "--pods-per-node", "1", "--prefix", PREFIX, "--state-dir", STATE_DIR]);
  mkdirSync(shimDir, { recursive: true });
  // Timed: the two first plugins; the rest (host-local under bridge, portmap in both chains) run unshimmed.
  const real = { flatnet: join(cniRoot, "bin", "flatnet"), bridge: join(REF, "bridge"), "host-local": join(REF, "host-local"), portmap: join(REF, "portmap") };
  for (const [name, target] of Object.entries(real)) {
    const timed = name === "flatnet" || name === "bridge";
    const body = timed
      ? `#!/bin/sh\ns=$(date +%s%N)\n${target}\nrc=$?\necho "${name} $CNI_COMMAND $s $(date +%s%N)" >> ${timings}\nexit $rc\n`
      : `#!/bin/sh\nexec ${target}\n`;
    writeFileSync(join(shimDir, name), body);
    chmodSync(join(shimDir, name), 0o755);
  }
  const conf = readFileSync(join(podmanDir, "containers.conf"), "utf8").replace(/cni_plugin_dirs = \[.*\]/, `cni_plugin_dirs = [${JSON.stringify(shimDir)}]`);
  writeFileSync(join(STATE_DIR, "bench-containers.conf"), conf);
  const flatnetConf = JSON.parse(readFileSync(join(cniRoot, "net.d", readdirSync(join(cniRoot, "net.d")).find((f) => f.endsWith(".conflist"))), "utf8"));
  writeFileSync(
    join(cniRoot, "net.d", "90-fn-dp-ref.conflist"),
    JSON.stringify({
      cniVersion: flatnetConf.cniVersion,
      name: REF_NETWORK,
      plugins: [
        { type: "bridge", bridge: "fndpref0", isGateway: true, ipMasq: false, mtu: 1450, ipam: { type: "host-local", ranges: [[{ subnet: "10.99.0.0/16" }]], dataDir: join(STATE_DIR, "ref-ipam") } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    }),
  );
}

function addTimes(plugin) {
  return readFileSync(timings, "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .filter(([name, command]) => name === plugin && command === "ADD")
    .map(([, , start, end]) => (Number(end) - Number(start)) / 1e6);
}

try {
  setUp();
  rmSync(timings, { force: true });
  for (let i = 0; i < N; i++) {
    for (const network of ["flatnet", REF_NETWORK]) podman(["run", "-d", "--network", network, "--name", `b-${network}-${i}`, "localhost/flatnet-lab-pod:1", "/bin/sleep", "3600"]);
  }
  const ours = addTimes("flatnet");
  const ref = addTimes("bridge");
  if (ours.length !== N || ref.length !== N) throw new Error(`expected ${N} ADDs each, timed ${ours.length} flatnet and ${ref.length} bridge`);
  const p50 = percentile(ours, 0.5);
  const refP50 = percentile(ref, 0.5);
  process.stderr.write(`CNI ADD through podman, ${N} containers each: flatnet p50 ${p50.toFixed(1)} ms (p90 ${percentile(ours, 0.9).toFixed(1)}), bridge+host-local p50 ${refP50.toFixed(1)} ms (p90 ${percentile(ref, 0.9).toFixed(1)}), ratio ${(p50 / refP50).toFixed(2)}\n`);
  report("podman-cni", [
    { bench: "podman-cni", metric: `CNI ADD p50 via podman's libcni, ${N} containers / bridge + host-local`, value: p50, unit: "ms", baseline: refP50, ratio: p50 / refP50, target: "<= 0.8x", pass: p50 / refP50 <= 0.8 },
  ]);
} finally {
  try {
    podman(["rm", "--all", "--force", "--time", "0"]);
  } catch (error) {
    process.stderr.write(`podman-cni bench: removing containers: ${error.message}\n`);
  }
  flatnet(["lab", "down", "--state-dir", STATE_DIR, "--prefix", PREFIX]);
  rmSync(STATE_DIR, { recursive: true, force: true });
}
