import { describe, expect, it } from "vitest";
import { buildProbeCommand } from "./probe-command.ts";

const args = ["check", "--ndjson"];
const cluster = { id: "kubernetes:prod", name: "prod", source: "kubernetes" as const };

describe("buildProbeCommand", () => {
  it.each([
    ["one kubeconfig file", ["/k/a"], ["flatnet", "check", "--ndjson", "--context", "prod", "--kubeconfig", "/k/a"], { FLATNET_CLUSTER_SOURCE: "kubernetes" }],
    ["several files: merged through KUBECONFIG", ["/k/a", "/k/b"], ["flatnet", "check", "--ndjson", "--context", "prod"], { FLATNET_CLUSTER_SOURCE: "kubernetes", KUBECONFIG: "/k/a:/k/b" }],
    ["no file known: the CLI's default", [], ["flatnet", "check", "--ndjson", "--context", "prod"], { FLATNET_CLUSTER_SOURCE: "kubernetes" }],
  ])("names the cluster by arguments, %s", (_, kubeconfigs, argv, env) => {
    expect(buildProbeCommand(["flatnet"], args, cluster, kubeconfigs)).toEqual({ argv, env });
  });

  it("keeps a context or kubeconfig the user put in the probe args", () => {
    const own = ["check", "--ndjson", "--context=other", "--kubeconfig", "/mine"];
    expect(buildProbeCommand(["flatnet"], own, cluster, ["/k/a"]).argv).toEqual(["flatnet", "check", "--ndjson", "--context=other", "--kubeconfig", "/mine"]);
  });

  it("names a lab by its state directory", () => {
    expect(buildProbeCommand(["node", "main.js"], args, { id: "lab:/tmp/lab", name: "flatnet lab", source: "lab" }, ["/k/a"])).toEqual({
      argv: ["node", "main.js", "check", "--ndjson", "--state-dir", "/tmp/lab"],
      env: { FLATNET_CLUSTER_SOURCE: "lab" },
    });
  });

  it("refuses a recorded fixture, naming it", () => {
    expect(() => buildProbeCommand(["flatnet"], args, { id: "fixture:x", name: "demo", source: "fixture" }, [])).toThrow('cluster "demo" is a fixture: only a lab or a Kubernetes context can be verified');
  });
});
