import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { evaluate } from "@marcbachmann/cel-js";
import { ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from "kubernetes-models/admissionregistration.k8s.io/v1";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { annotationKeys, DEFAULT_ANNOTATION_PREFIX } from "@flatnet/core";
import { registrationAnnotations } from "../../apps/agent/src/datastore/kube-node.ts";
import { applyMergePatch, applyStrategicMergePatch } from "../fake-apiserver/patch.ts";

// deploy/admission-policy.yaml's CEL, evaluated here (@marcbachmann/cel-js, a CEL implementation; the apiserver's is
// cel-go with Kubernetes' libraries, which these expressions do not use) on the Node updates the agent's own patches
// produce (kube-datastore.ts: register/heartbeat, remove, the IPAM leader's podCIDRs) and on the ones it must refuse.
// As the apiserver runs a policy: matchConditions, then variables in order, then every validation.

type Obj = Record<string, any>;
const docs = parseAllDocuments(readFileSync(fileURLToPath(new URL("../../deploy/admission-policy.yaml", import.meta.url)), "utf8")).map((d) => d.toJS() as Obj);
const policy = docs.find((d) => d.kind === "ValidatingAdmissionPolicy")!;
const binding = docs.find((d) => d.kind === "ValidatingAdmissionPolicyBinding")!;
const AGENT = "system:serviceaccount:flatnet-system:flatnet";

interface Request {
  username: string;
  /** The node name bound in the token (absent: a token not bound to a pod's node). */
  node?: string;
}

/** Undefined when the policy does not apply (matchConditions), else the messages of the failed validations. */
function admit(request: Request, oldObject: Obj, object: Obj): string[] | undefined {
  const userInfo: Obj = { username: request.username };
  if (request.node !== undefined) userInfo.extra = { "authentication.kubernetes.io/node-name": [request.node] };
  const context: Obj = { request: { userInfo, operation: "UPDATE" }, object, oldObject, variables: {} };
  if (!policy.spec.matchConditions.every((c: Obj) => evaluate(c.expression, context) === true)) return undefined;
  for (const v of policy.spec.variables) context.variables[v.name] = evaluate(v.expression, context);
  return policy.spec.validations.filter((v: Obj) => evaluate(v.expression, context) !== true).map((v: Obj) => String(evaluate(v.messageExpression, context)));
}

const node = (name: string, extra: Obj = {}): Obj => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name, labels: { "kubernetes.io/hostname": name }, annotations: { "node.alpha.kubernetes.io/ttl": "0" } },
  spec: { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"], providerID: `kind://${name}` },
  ...extra,
});
const withAnnotations = (n: Obj, annotations: Obj) => applyMergePatch(n, { metadata: { annotations } });
const registration = registrationAnnotations({ name: "n1", underlayIps: ["172.31.0.11"], vtepMac: "0e:00:00:00:00:01", underlayMtu: 1500 }, DEFAULT_ANNOTATION_PREFIX, "vxlan");

describe("deploy/admission-policy.yaml", () => {
  it("validates against the Kubernetes schema and is bound with Deny", () => {
    expect(() => new ValidatingAdmissionPolicy(policy).validate()).not.toThrow();
    expect(() => new ValidatingAdmissionPolicyBinding(binding as ConstructorParameters<typeof ValidatingAdmissionPolicyBinding>[0]).validate()).not.toThrow();
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ["Deny"] });
    expect(policy.spec.failurePolicy).toBe("Fail");
  });

  it("the agent's annotations are the ones the policy lets it write (prefix flatnet.io/)", () => {
    expect(DEFAULT_ANNOTATION_PREFIX).toBe("flatnet.io/");
    expect(Object.values(annotationKeys(DEFAULT_ANNOTATION_PREFIX)).every((k) => k.startsWith("flatnet.io/"))).toBe(true);
  });

  const agentOf = (name: string): Request => ({ username: AGENT, node: name });
  const registered = withAnnotations(node("n1"), registration);

  it.each<[string, Request, Obj, Obj]>([
    // The patches the agent sends, applied as the apiserver applies them.
    ["register/heartbeat on its own Node (strategic merge of its annotations)", agentOf("n1"), node("n1"), applyStrategicMergePatch(node("n1"), { metadata: { annotations: registration } })],
    ["remove: its annotations set to null (merge patch)", agentOf("n1"), registered, applyMergePatch(registered, { metadata: { annotations: Object.fromEntries(Object.keys(registration).map((k) => [k, null])) } })],
    [
      "the IPAM leader gives a Node without pod CIDRs its first ones (podCidrAllocator: flatnet)",
      agentOf("n1"),
      node("n2", { spec: { providerID: "kind://n2" } }),
      applyMergePatch(node("n2", { spec: { providerID: "kind://n2" } }), { metadata: { resourceVersion: "7" }, spec: { podCIDR: "10.244.2.0/24", podCIDRs: ["10.244.2.0/24"] } }),
    ],
  ])("allows %s", (_label, request, oldObject, object) => {
    expect(admit(request, oldObject, object)).toEqual([]);
  });

  const own = "the flatnet agent of node n1 may change only flatnet.io/ annotations of its Node";
  const other = (name: string) => `the flatnet agent of node n1 may not patch Node ${name} (only its own; the IPAM leader may only give a Node without spec.podCIDRs its first pod CIDRs)`;
  it.each<[string, Request, Obj, Obj, string[]]>([
    ["its annotations on another Node", agentOf("n1"), node("n2"), withAnnotations(node("n2"), registration), [other("n2")]],
    ["another agent's annotations removed from another Node", agentOf("n1"), withAnnotations(node("n2"), registration), node("n2"), [other("n2")]],
    ["a foreign annotation on its own Node", agentOf("n1"), node("n1"), withAnnotations(node("n1"), { "example.com/x": "1" }), [own]],
    ["a foreign annotation changed", agentOf("n1"), node("n1"), withAnnotations(node("n1"), { "node.alpha.kubernetes.io/ttl": "30" }), [own]],
    ["a foreign annotation removed", agentOf("n1"), node("n1"), withAnnotations(node("n1"), { "node.alpha.kubernetes.io/ttl": null }), [own]],
    ["a label on its own Node", agentOf("n1"), node("n1"), applyMergePatch(node("n1"), { metadata: { labels: { "node-role.kubernetes.io/control-plane": "" } } }), [own]],
    ["its own Node cordoned", agentOf("n1"), node("n1"), applyMergePatch(node("n1"), { spec: { unschedulable: true } }), [own]],
    ["a taint removed from its own Node", agentOf("n1"), node("n1", { spec: { ...node("n1").spec, taints: [{ key: "k", effect: "NoSchedule" }] } }), node("n1"), [own]],
    ["its own pod CIDRs changed", agentOf("n1"), node("n1"), applyMergePatch(node("n1"), { spec: { podCIDR: "10.244.9.0/24", podCIDRs: ["10.244.9.0/24"] } }), [own]],
    ["another Node's set pod CIDRs changed", agentOf("n1"), node("n2"), applyMergePatch(node("n2"), { spec: { podCIDR: "10.244.9.0/24", podCIDRs: ["10.244.9.0/24"] } }), [other("n2")]],
    [
      "first pod CIDRs plus a taint on another Node",
      agentOf("n1"),
      node("n2", { spec: {} }),
      applyMergePatch(node("n2", { spec: {} }), { spec: { podCIDRs: ["10.244.2.0/24"], taints: [{ key: "k", effect: "NoSchedule" }] } }),
      [other("n2")],
    ],
    [
      "first pod CIDRs plus flatnet annotations on another Node",
      agentOf("n1"),
      node("n2", { spec: {} }),
      applyMergePatch(node("n2", { spec: {} }), { metadata: { annotations: registration }, spec: { podCIDRs: ["10.244.2.0/24"] } }),
      [other("n2")],
    ],
    [
      "a token not bound to a node",
      { username: AGENT },
      node("n1"),
      withAnnotations(node("n1"), registration),
      ["the flatnet agent may patch Nodes only with a service account token bound to its node (authentication.kubernetes.io/node-name; Kubernetes >= 1.30); this request has none"],
    ],
  ])("denies %s, naming the rule", (_label, request, oldObject, object, messages) => {
    expect(admit(request, oldObject, object)).toEqual(messages);
  });

  it.each([["a kubelet", "system:node:n2"], ["another service account", "system:serviceaccount:kube-system:node-controller"]])(
    "does not apply to %s",
    (_label, username) => {
      expect(admit({ username }, node("n2"), applyMergePatch(node("n2"), { metadata: { labels: { a: "b" } } }))).toBeUndefined();
    },
  );
});
