import { describe, expect, it } from "vitest";
import { type KubeSelectionInput, selectContexts, selectKubeconfigPaths } from "./kube-selection.ts";

const base: KubeSelectionInput = { settingPaths: [], settingContexts: [], tools: undefined, env: undefined, home: "/home/me" };

describe("selectKubeconfigPaths", () => {
  it.each([
    ["no Kubernetes extension: KUBECONFIG", { env: "/a:/b" }, ["/a", "/b"]],
    ["no Kubernetes extension, no KUBECONFIG: ~/.kube/config", {}, ["/home/me/.kube/config"]],
    ["the Kubernetes extension's kubeconfig over KUBECONFIG", { env: "/a", tools: { kubeconfigPath: "/tools/config" } }, ["/tools/config"]],
    ["flatnet.kubeconfig over the Kubernetes extension", { settingPaths: ["/mine"], tools: { kubeconfigPath: "/tools/config" } }, ["/mine"]],
  ])("%s", (_, over, expected) => {
    expect(selectKubeconfigPaths({ ...base, ...over })).toEqual(expected);
  });
});

describe("selectContexts", () => {
  it.each([
    ["the file's current-context", {}, "kind-a", ["kind-a"]],
    ["no current context: none", {}, "", []],
    ["the context the Kubernetes extension switched to", { tools: { context: "kind-b" } }, "kind-a", ["kind-b"]],
    ["cleared in the Kubernetes extension: none", { tools: { context: null } }, "kind-a", []],
    ["flatnet.contexts over everything", { settingContexts: ["x", "y"], tools: { context: "kind-b" } }, "kind-a", ["x", "y"]],
  ])("%s", (_, over, current, expected) => {
    expect(selectContexts({ ...base, ...over }, current)).toEqual(expected);
  });
});
