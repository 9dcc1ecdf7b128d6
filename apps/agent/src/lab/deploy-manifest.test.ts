import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { containerRun, loadDeployManifests, securityArgs } from "./deploy-manifest.ts";

const deployDir = fileURLToPath(new URL("../../../../deploy/", import.meta.url));
const node = { name: "node2", hostIp: "172.31.0.12", hostRoot: "/lab/deploy/node2/root", podDir: "/lab/deploy/node2/pod" };
const image = { reference: ["localhost/flatnet:dev"], env: ["PATH=/usr/bin:/bin"], workingDir: "/opt/flatnet" };
const scratch = mkdtempSync(join(tmpdir(), "fn-dp-manifest-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the DaemonSet as podman runs it", () => {
  const manifests = loadDeployManifests(deployDir);

  it("the agent: the manifest's command and args, downward API env, capabilities and read-only root", () => {
    const run = containerRun(manifests, "agent", node, image, "{}");
    const args = run.runArgs;
    expect(args.slice(0, 3)).toEqual(["run", "--name", "flatnet-node2-agent"]);
    expect(args).toContain("FLATNET_NODE=node2");
    expect(args).toContain("HOST_IP=172.31.0.12");
    expect(args.join(" ")).toContain("--network host");
    expect(args.join(" ")).toContain("--cap-drop ALL --cap-add NET_ADMIN --cap-add SYS_ADMIN");
    expect(args).toContain("--read-only");
    expect(args.join(" ")).toContain("--env PATH=/usr/bin:/bin --workdir /opt/flatnet");
    expect(args.join(" ")).toContain("--security-opt no-new-privileges");
    expect(args.join(" ")).toContain(`--entrypoint ${JSON.stringify(["/bin/sh", "-c"])}`);
    const template = manifests.daemonSet.spec.template.spec.containers[0];
    expect(args.slice(args.indexOf("localhost/flatnet:dev") + 1)).toEqual(template.args);
    expect(args).toContain("/lab/deploy/node2/root/run/netns:/run/netns:rw,rslave");
    expect(args).toContain("/lab/deploy/node2/pod/volumes/config:/etc/flatnet:ro,rprivate");
    expect(run.files.map((f) => f.path)).toContain("/lab/deploy/node2/pod/volumes/config/agent.yaml");
    expect(run.files.find((f) => f.path.endsWith("/run/xtables.lock"))?.content).toBe("");
    expect(run.probes.map((p) => `${p.kind} ${p.url}`)).toEqual(["readiness http://172.31.0.12:9471/readyz", "liveness http://172.31.0.12:9471/healthz"]);
  });

  it("install-cni: hostPath volumes land under the node's root", () => {
    const run = containerRun(manifests, "install-cni", node, image, "{}");
    expect(run.runArgs).toContain("/lab/deploy/node2/root/opt/cni/bin:/host/opt/cni/bin:rw,rprivate");
    expect(run.directories).toContain("/lab/deploy/node2/root/etc/cni/net.d");
    expect(run.probes).toEqual([]);
  });

  it("a manifest change is what runs: values are read from the files", () => {
    const copy = join(scratch, "deploy");
    cpSync(deployDir, copy, { recursive: true });
    const file = join(copy, "daemonset.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("fieldPath: status.hostIP", "fieldPath: spec.nodeName"));
    const args = containerRun(loadDeployManifests(copy), "agent", node, image, "{}").runArgs;
    expect(args).toContain("HOST_IP=node2");
  });

  it("what podman cannot honour is an error naming the field", () => {
    expect(() => securityArgs({ runAsGroup: 5 })).toThrow(/securityContext.runAsGroup is not mapped/);
    expect(() => containerRun(manifests, "nope", node, image, "{}")).toThrow(/no container "nope"/);
    expect(securityArgs({ seccompProfile: { type: "Unconfined" } })).toEqual(["--security-opt", "seccomp=unconfined"]);
  });
});
