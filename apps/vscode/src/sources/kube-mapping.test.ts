import { describe, expect, it } from "vitest";
import { agentHealthByNode, buildKubeView, parseLabelSelector } from "./kube-mapping.ts";

const node = (name: string, ready: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name, annotations: { "flatnet.io/backend": "vxlan" } },
  spec: { podCIDRs: [`10.244.${name.slice(-1)}.0/24`, `fd00:10:244:${name.slice(-1)}::/64`] },
  status: { addresses: [{ type: "Hostname", address: name }, { type: "InternalIP", address: `172.31.0.1${name.slice(-1)}` }], conditions: [{ type: "Ready", status: ready }] },
  ...extra,
});
const pod = (name: string, nodeName: string | undefined, ips: string[], extra: Record<string, unknown> = {}) => ({
  metadata: { name, namespace: "apps", labels: {} },
  spec: { nodeName, hostNetwork: false },
  status: { phase: "Running", podIPs: ips.map((ip) => ({ ip })), conditions: [{ type: "Ready", status: "True" }] },
  ...extra,
});
const agent = (nodeName: string, ready: string) => ({
  metadata: { name: `flatnet-${nodeName}`, namespace: "kube-system", labels: { "app.kubernetes.io/name": "flatnet" } },
  spec: { nodeName, hostNetwork: true },
  status: { phase: "Running", podIP: "172.31.0.1", conditions: [{ type: "Ready", status: ready }] },
});

describe("buildKubeView", () => {
  it("maps nodes (InternalIP, podCIDRs, backend annotation, Ready) and scheduled pods; counts objects that do not fit", () => {
    const { view, skipped } = buildKubeView(
      "kubernetes:kind",
      "kind",
      {
        nodes: [node("n1", "True"), node("n2", "False"), { metadata: {} }],
        pods: [pod("web", "n1", ["10.244.1.5", "fd00:10:244:1::5"]), pod("pending", undefined, []), agent("n1", "True"), agent("n2", "False"), { spec: {} }],
      },
      { "app.kubernetes.io/name": "flatnet" },
    );
    expect(skipped).toBe(2);
    expect(view.nodes).toEqual([
      { name: "n1", internalIps: ["172.31.0.11"], podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"], backend: "vxlan", agent: "healthy", ready: true },
      { name: "n2", internalIps: ["172.31.0.12"], podCidrs: ["10.244.2.0/24", "fd00:10:244:2::/64"], backend: "vxlan", agent: "degraded", ready: false },
    ]);
    expect(view.pods.map((p) => `${p.namespace}/${p.name} ${p.node} ${p.ips.join(",")} ${p.hostNetwork}`)).toEqual([
      "apps/web n1 10.244.1.5,fd00:10:244:1::5 false",
      "kube-system/flatnet-n1 n1 172.31.0.1 true",
      "kube-system/flatnet-n2 n2 172.31.0.1 true",
    ]);
  });

  it("falls back to spec.podCIDR and status.podIP (single-stack clusters)", () => {
    const { view } = buildKubeView(
      "k",
      "k",
      { nodes: [{ metadata: { name: "n1" }, spec: { podCIDR: "10.244.1.0/24" }, status: {} }], pods: [{ metadata: { name: "p" }, spec: { nodeName: "n1" }, status: { podIP: "10.244.1.9" } }] },
      {},
    );
    expect(view.nodes[0]).toEqual({ name: "n1", internalIps: [], podCidrs: ["10.244.1.0/24"], agent: "unknown", ready: false });
    expect(view.pods[0]).toEqual({ namespace: "default", name: "p", node: "n1", ips: ["10.244.1.9"], phase: "Unknown", hostNetwork: false });
  });
});

describe("agentHealthByNode", () => {
  it.each([
    [[], "n1", "unknown"],
    [[agent("n1", "True")], "n1", "healthy"],
    [[agent("n1", "False")], "n1", "degraded"],
    [[agent("n1", "False"), agent("n1", "True")], "n1", "healthy"],
    [[agent("n1", "True")], "n2", "down"],
  ] as const)("%#: %s -> %s", (pods, name, health) => {
    expect(agentHealthByNode(pods as never)(name)).toBe(health);
  });
});

describe("parseLabelSelector", () => {
  it.each([
    ["app=flatnet", { app: "flatnet" }],
    [" app = flatnet , tier=node ", { app: "flatnet", tier: "node" }],
    ["", {}],
  ])("parses %j", (text, selector) => expect(parseLabelSelector(text)).toEqual(selector));
  it("names the unsupported term", () => {
    expect(() => parseLabelSelector("app in (a)")).toThrow('label selector "app in (a)" has "app in (a)"; only key=value terms are supported');
  });
});
