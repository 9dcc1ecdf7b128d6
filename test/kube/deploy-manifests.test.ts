import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DaemonSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Namespace, ServiceAccount } from "kubernetes-models/v1";
import { ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from "kubernetes-models/admissionregistration.k8s.io/v1";
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { parseNetworkConfig } from "../../apps/agent/src/config/network-config.ts";
import { resolveAgentSettings } from "../../apps/agent/src/config/agent-config.ts";
import { parseHostPort } from "../../apps/agent/src/config/metrics-address.ts";
import { parseNetconf } from "../../apps/agent/src/cni/netconf.ts";
import { evidenceSocketPath } from "../../apps/agent/src/api/routes-probe.ts";
import { DEFAULT_POD_IPAM_DB } from "../../apps/agent/src/metrics/cluster-metrics.ts";
import { DEFAULT_IPAM_LEASE as IPAM_LEASE } from "../../apps/agent/src/datastore/kube-datastore.ts";

// The manifests are validated against the Kubernetes OpenAPI schemas that the kubernetes-models package compiles
// (types, enums, required fields), plus flatnet's own rules: least privilege, and configs the agent accepts.

const deployDir = fileURLToPath(new URL("../../deploy/", import.meta.url));
type Obj = Record<string, any>;

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "apps/v1/DaemonSet": DaemonSet,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy": ValidatingAdmissionPolicy,
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding": ValidatingAdmissionPolicyBinding,
};

function loadManifests(): { file: string; object: Obj }[] {
  return readdirSync(deployDir)
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(deployDir, file), "utf8")).map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
        return { file, object: doc.toJS() as Obj };
      }),
    );
}

function validate(object: Obj): void {
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!Model) throw new Error(`no schema for ${object.apiVersion}/${object.kind}`);
  new Model(object).validate();
}

const manifests = loadManifests();
const find = (kind: string, name?: string) => {
  const found = manifests.find((m) => m.object.kind === kind && (name === undefined || m.object.metadata.name === name));
  if (!found) throw new Error(`no ${kind} ${name ?? ""} in deploy/`);
  return found.object;
};

describe("deploy/ manifests", () => {
  it.each(manifests.map((m) => [`${m.file}: ${m.object.kind} ${m.object.metadata?.name}`, m.object]))(
    "%s validates against the Kubernetes schema",
    (_label, object) => {
      expect(() => validate(object as Obj)).not.toThrow();
    },
  );

  it("the kustomization installs the agent's manifests, and lists only files that exist", () => {
    const kustomization = parseAllDocuments(readFileSync(join(deployDir, "kustomization.yaml"), "utf8"))[0]!.toJS() as Obj;
    const files = new Set(manifests.map((m) => m.file));
    expect(kustomization.resources.filter((file: string) => !files.has(file))).toEqual([]);
    // Optional extras (the probe responder DaemonSet) are applied on their own.
    expect(kustomization.resources).toEqual(expect.arrayContaining(["namespace.yaml", "rbac.yaml", "admission-policy.yaml", "configmap.yaml", "daemonset.yaml"]));
  });

  it.each([
    ["a string where an integer belongs", (ds: Obj) => (ds.spec.updateStrategy.rollingUpdate.maxUnavailable = { n: 1 })],
    ["a missing selector", (ds: Obj) => delete ds.spec.selector],
    ["a container without a name", (ds: Obj) => delete ds.spec.template.spec.containers[0].name],
    ["hostNetwork as a string", (ds: Obj) => (ds.spec.template.spec.hostNetwork = "yes")],
    ["an unknown updateStrategy type", (ds: Obj) => (ds.spec.updateStrategy.type = "Sometimes")],
    ["a container port as a string", (ds: Obj) => (ds.spec.template.spec.containers[0].ports[0].containerPort = "metrics")],
    ["an httpGet probe without a port", (ds: Obj) => delete ds.spec.template.spec.containers[0].readinessProbe.httpGet.port],
  ])("the validator catches %s (so a pass means something)", (_label, mutate) => {
    const broken = structuredClone(find("DaemonSet", "flatnet"));
    mutate(broken);
    expect(() => validate(broken)).toThrow();
  });

  it("runs the agent with host networking and only NET_ADMIN, SYS_ADMIN", () => {
    const pod = find("DaemonSet", "flatnet").spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.serviceAccountName).toBe(find("ServiceAccount").metadata.name);
    for (const container of [...pod.initContainers, ...pod.containers]) {
      expect(container.securityContext.privileged ?? false).toBe(false);
      expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
      expect(container.securityContext.capabilities.drop).toEqual(["ALL"]);
    }
    expect(pod.containers.map((c: Obj) => [c.name, c.securityContext.capabilities.add])).toEqual([["agent", ["NET_ADMIN", "SYS_ADMIN"]]]);
    expect(pod.initContainers.map((c: Obj) => [c.name, c.securityContext.capabilities.add])).toEqual([["install-cni", undefined]]);
    const env = pod.containers[0].env.find((e: Obj) => e.name === "FLATNET_NODE");
    expect(env.valueFrom.fieldRef.fieldPath).toBe("spec.nodeName");
    expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
  });

  describe("metrics and health over TCP", () => {
    const pod = () => find("DaemonSet", "flatnet");
    const agent = () => pod().spec.template.spec.containers[0] as Obj;
    /** The --metrics-address the agent's shell command passes, e.g. "${HOST_IP}:9471". */
    const flagValue = () => {
      const command = agent().args.join(" ");
      const match = /--metrics-address "([^"]+)"/.exec(command);
      if (!match) throw new Error(`no --metrics-address "..." in the agent's command: ${command}`);
      return match[1]!;
    };

    it("passes --metrics-address on the node IP (downward API status.hostIP) and the named container port", () => {
      expect(flagValue()).toBe("${HOST_IP}:9471");
      const hostIp = agent().env.find((e: Obj) => e.name === "HOST_IP");
      expect(hostIp.valueFrom.fieldRef.fieldPath).toBe("status.hostIP");
      expect(agent().ports).toEqual([{ name: "metrics", containerPort: 9471, hostPort: 9471, protocol: "TCP" }]);
    });

    it.each([["10.0.0.5"], ["fd00::5"]])("the flag with node IP %s is a value the agent's settings layer accepts, on the container port", (ip) => {
      const value = flagValue().replace("${HOST_IP}", ip);
      const settings = resolveAgentSettings({ flags: { metricsAddress: value }, flagSource: () => "cli", env: {} });
      expect(parseHostPort(settings.metricsAddress!)).toEqual({ host: ip, port: agent().ports[0].containerPort });
    });

    it("fixes no underlay device: the agent finds the interface holding the node IP it is passed (--node-ip, status.hostIP)", () => {
      expect(find("ConfigMap").data["agent.yaml"]).not.toMatch(/^\s*underlayDevice:/m);
      expect(agent().args.join(" ")).toContain('--node-ip "${HOST_IP}"');
      const settings = resolveAgentSettings({ flags: { nodeIp: "10.0.0.5" }, flagSource: () => "cli", env: {} });
      expect(settings.nodeIp).toBe("10.0.0.5");
    });

    it("probes /readyz and /healthz with kubelet's httpGet on that port (no exec, no curl)", () => {
      const port = agent().ports.find((p: Obj) => p.name === "metrics");
      expect(agent().readinessProbe.httpGet).toEqual({ path: "/readyz", port: "metrics" });
      expect(agent().livenessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
      for (const probe of [agent().readinessProbe, agent().livenessProbe]) {
        expect(probe.exec).toBeUndefined();
        // A named port must name a declared container port, and that port must be the flag's.
        expect(probe.httpGet.port).toBe(port.name);
        expect(flagValue().endsWith(`:${port.containerPort}`)).toBe(true);
      }
    });

    it("tells Prometheus where to scrape: the same port and /metrics", () => {
      const annotations = pod().spec.template.metadata.annotations;
      expect(annotations).toEqual({ "prometheus.io/scrape": "true", "prometheus.io/port": String(agent().ports[0].containerPort), "prometheus.io/path": "/metrics" });
    });

    it("the image no longer ships curl for probes", () => {
      const dockerfile = readFileSync(join(deployDir, "Dockerfile"), "utf8");
      expect(dockerfile).not.toMatch(/apt-get install[^\n]*\bcurl\b/);
    });
  });

  it("grants exactly what the agent calls: nodes list/watch/patch, its own lease by name in its own namespace", () => {
    expect(find("ClusterRole").rules).toEqual([{ apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch", "patch"] }]);
    const role = find("Role");
    expect(role.metadata.namespace).toBe(find("Namespace").metadata.name);
    expect(role.rules).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [IPAM_LEASE], verbs: ["get", "update"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    ]);
    for (const binding of [find("ClusterRoleBinding"), find("RoleBinding")]) {
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "flatnet", namespace: "flatnet-system" }]);
    }
  });

  it("the probe responder relays evidence to the agent's evidence socket, on the agent's hostPath, read-only (issue 10.4)", () => {
    const agentYaml = find("ConfigMap").data["agent.yaml"] as string;
    const apiSocket = /^\s*socket:\s*(\S+)\s*$/m.exec(agentYaml)?.[1];
    expect(apiSocket).toBe("/run/flatnet/agent.sock");
    const probe = find("DaemonSet", "flatnet-probe").spec.template.spec;
    const responder = probe.containers[0] as Obj;
    expect(/--agent-socket (\S+)/.exec(responder.args.join(" "))?.[1]).toBe(evidenceSocketPath(apiSocket!));
    const mount = responder.volumeMounts.find((m: Obj) => apiSocket!.startsWith(`${m.mountPath}/`));
    expect(mount).toMatchObject({ mountPath: "/run/flatnet", readOnly: true });
    const hostPath = (spec: Obj, name: string) => spec.volumes.find((v: Obj) => v.name === name).hostPath.path;
    const agentSpec = find("DaemonSet", "flatnet").spec.template.spec;
    const agentMount = agentSpec.containers[0].volumeMounts.find((m: Obj) => m.mountPath === "/run/flatnet");
    expect(hostPath(probe, mount.name)).toBe(hostPath(agentSpec, agentMount.name));
  });

  it("ships configs the agent and the CNI plugin accept", () => {
    const data = find("ConfigMap").data;
    expect(parseNetworkConfig(JSON.parse(data["net-conf.json"]), "net-conf.json").clusterCidrs).toEqual(["10.244.0.0/16"]);
    const conflist = JSON.parse(data["cni-conf.json"]);
    // As the runtime hands the first plugin its config: name and cniVersion copied in.
    const netconf = parseNetconf(JSON.stringify({ cniVersion: conflist.cniVersion, name: conflist.name, ...conflist.plugins[0] }));
    expect(netconf).toMatchObject({ name: "flatnet", subnetFile: "/run/flatnet/subnet.json" });
    const dir = mkdtempSync(join(tmpdir(), "fnk-deploy-"));
    try {
      const path = join(dir, "agent.yaml");
      writeFileSync(path, data["agent.yaml"]);
      const settings = resolveAgentSettings({ flags: {}, flagSource: () => undefined, env: { FLATNET_NODE: "node-a" }, configPath: path });
      expect(settings).toMatchObject({ node: "node-a", datastore: "kubernetes", netns: "host", leaseNamespace: "flatnet-system" });
      // The agent writes the subnet file where the plugin reads it, on the hostPath both see.
      expect(settings.subnetFile).toBe(netconf.subnetFile);
      const mounts = find("DaemonSet", "flatnet").spec.template.spec.containers[0].volumeMounts.map((m: Obj) => m.mountPath);
      expect(mounts).toContain("/run/flatnet");
      // The agent reads the plugin's IPAM database for flatnet_node_pod_ips: the default path is where the plugin
      // writes it (dataDir/<network name>/ipam.db), under a path the agent container mounts.
      expect(DEFAULT_POD_IPAM_DB).toBe(join(netconf.dataDir, netconf.name, "ipam.db"));
      expect(mounts.some((mount: string) => DEFAULT_POD_IPAM_DB.startsWith(`${mount}/`))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
