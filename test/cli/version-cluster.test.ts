import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeApiServer } from "../fake-apiserver/fake-apiserver.ts";

// `flatnet version --kubeconfig`: the built CLI lists a cluster's agent pods (deploy/daemonset.yaml's labels) and
// their images from the fake kube-apiserver; an unreachable cluster still prints the client, and exits 1.

const main = fileURLToPath(new URL("../../apps/agent/dist/main.js", import.meta.url));
const built = existsSync(main);
if (!built) console.log(`version --kubeconfig tests skipped: ${main} is missing; build first`);

function flatnet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { encoding: "utf8" }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code), stdout, stderr }),
    );
  });
}

describe.skipIf(!built)("flatnet version --kubeconfig", () => {
  const fake = new FakeApiServer();
  let dir: string;
  let kubeconfig: string;
  const agentLabels = { "app.kubernetes.io/name": "flatnet", "app.kubernetes.io/component": "agent" };
  const pod = (name: string, node: string, image: string, ready: boolean, labels: Record<string, string> = agentLabels) => ({
    metadata: { name, namespace: "flatnet-system", labels },
    spec: { nodeName: node, containers: [{ name: "agent", image }] },
    status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-cl-kversion-"));
    await fake.start();
    kubeconfig = join(dir, "kubeconfig.json");
    writeFileSync(kubeconfig, fake.kubeconfig());
    fake.workloads.put("namespaces", { metadata: { name: "flatnet-system" } });
    fake.workloads.put("pods", pod("flatnet-a1", "node-1", "ghcr.io/flatnet/flatnet:0.1.0", true));
    fake.workloads.put("pods", pod("flatnet-b2", "node-2", "ghcr.io/flatnet/flatnet:0.0.9", false));
    fake.workloads.put("pods", pod("flatnet-probe-x", "node-1", "ghcr.io/flatnet/flatnet:0.1.0", true, { "app.kubernetes.io/name": "flatnet", "app.kubernetes.io/component": "probe-responder" }));
  });
  afterAll(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists each agent pod's node, image and readiness, next to the client", async () => {
    const run = await flatnet("version", "-o", "json", "--kubeconfig", kubeconfig, "--state-dir", join(dir, "no-lab"));
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).cluster).toEqual({
      name: "fake",
      namespace: "flatnet-system",
      agents: [
        { source: "cluster", node: "node-1", pod: "flatnet-a1", image: "ghcr.io/flatnet/flatnet:0.1.0", ready: true },
        { source: "cluster", node: "node-2", pod: "flatnet-b2", image: "ghcr.io/flatnet/flatnet:0.0.9", ready: false },
      ],
    });
    const text = await flatnet("version", "--kubeconfig", kubeconfig, "--state-dir", join(dir, "no-lab"));
    expect(text.stdout.split("\n").slice(1)).toEqual([
      "cluster fake, namespace flatnet-system:",
      "  node-1   flatnet-a1 ghcr.io/flatnet/flatnet:0.1.0",
      "  node-2   flatnet-b2 ghcr.io/flatnet/flatnet:0.0.9 (not ready)",
      "",
    ]);
  });

  it("an unreachable cluster: the client's version still printed, one line on stderr, exit 1", async () => {
    const gone = join(dir, "gone.json");
    writeFileSync(gone, fake.kubeconfig().replace(fake.url, "http://127.0.0.1:9"));
    const run = await flatnet("version", "--kubeconfig", gone, "--state-dir", join(dir, "no-lab"));
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^client: flatnet /);
    expect(run.stderr).toMatch(/^flatnet version: the cluster's agents: .*ECONNREFUSED.*\n$/);
  });
});
