import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { findDeployDir, prepareDeployment } from "./deploy.ts";
import { addNode, killAgent, removeNode, startAgent } from "./lab.ts";

const repoDeploy = fileURLToPath(new URL("../../../../deploy", import.meta.url));
const main = fileURLToPath(new URL("../../dist/main.js", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "fn-dp-find-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("lab up --deploy: where the manifests and the API server are", () => {
  it.each([
    ["the checkout root", join(repoDeploy, "..")],
    ["deploy/ itself", repoDeploy],
    ["a folder below the checkout", join(repoDeploy, "..", "apps", "agent", "src")],
  ])("bare --deploy from %s finds the checkout's deploy/", (_, start) => {
    expect(findDeployDir(start)).toBe(repoDeploy);
  });

  it("no deploy/daemonset.yaml up to / is an error naming where it looked and the flag", () => {
    const empty = join(scratch, "empty", "deeper");
    mkdirSync(empty, { recursive: true });
    expect(() => findDeployDir(empty)).toThrow(`no deploy/daemonset.yaml in ${empty} or its parents; name the manifests' directory: --deploy DIR`);
  });

  it("a missing API socket is an error naming it, before anything is built", async () => {
    const socket = join(scratch, "nope.sock");
    await expect(prepareDeployment(join(scratch, "lab"), { kubeApiSocket: socket, deployDir: repoDeploy })).rejects.toThrow(`--kube-api-socket "${socket}" does not exist`);
    expect(existsSync(join(scratch, "lab"))).toBe(false);
  });

  it.each([
    ['"nodeMaskIPv4": 24', '"nodeMaskIPv4": 31', 'key "nodeMaskIPv4" = 31: must be 0-30'],
    ['"backend": "auto",', '"backend": "auto"', "not JSON"],
  ])("the ConfigMap's net-conf.json is read with the agent's schema: %s -> %s is refused before anything is built", async (from, to, rule) => {
    const deployDir = join(scratch, `deploy-${rule.length}`);
    cpSync(repoDeploy, deployDir, { recursive: true });
    const file = join(deployDir, "configmap.yaml");
    const text = readFileSync(file, "utf8");
    expect(text).toContain(from);
    writeFileSync(file, text.replace(from, to));
    const socket = join(scratch, "api.sock");
    writeFileSync(socket, "");
    const stateDir = join(scratch, "lab-bad-netconf");
    await expect(prepareDeployment(stateDir, { kubeApiSocket: socket, deployDir })).rejects.toThrow(`${file} net-conf.json`);
    await expect(prepareDeployment(stateDir, { kubeApiSocket: socket, deployDir })).rejects.toThrow(rule);
    expect(existsSync(stateDir)).toBe(false);
  });
});

describe("a lab built with --deploy: its agents are the DaemonSet's containers, not lab processes", () => {
  const stateDir = join(scratch, "deployed");
  mkdirSync(join(stateDir, "deploy"), { recursive: true });
  it.each([
    ["add-node", () => addNode({ stateDir })],
    ["remove-node", () => removeNode("node1", { stateDir })],
    ["kill-agent", () => killAgent("node1", { stateDir })],
    ["start-agent", () => startAgent("node1", { stateDir })],
  ])("lab %s refuses it, naming the way out", async (command, call) => {
    await expect(call()).rejects.toThrow(`lab ${command} does not run on a lab built with --deploy (its agents are the DaemonSet's containers); lab down, then lab up without --deploy`);
  });
});

describe.skipIf(!existsSync(main) || process.getuid?.() !== 0)("flatnet lab up --deploy: flags that do not go (built CLI, root)", () => {
  it.each([
    [[], "flatnet lab up: --deploy needs --kube-api-socket PATH: the agents' datastore is a Kubernetes API server\n"],
    [["--kube-api-socket", "/nonexistent/api.sock", "--runtime", "netns"], `flatnet lab up: --deploy runs pods with podman (the node's runtime); --runtime "netns" does not go with it\n`],
  ])("--deploy %j: exit 1, one line naming the flag, nothing built", (extra, stderr) => {
    const stateDir = join(scratch, "cli-lab");
    const run = spawnSync(process.execPath, [main, "lab", "up", "--deploy", ...extra, "--state-dir", stateDir], { encoding: "utf8", cwd: scratch });
    expect({ status: run.status, stderr: run.stderr, stdout: run.stdout }).toEqual({ status: 1, stderr, stdout: "" });
    expect(existsSync(stateDir)).toBe(false);
  });
});
