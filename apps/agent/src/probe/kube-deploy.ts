import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { PROBE_TOKEN_SECRET, type KubeClient } from "./kube-source.ts";
import { waitFor } from "../wait.ts";

// `flatnet check --deploy`: apply the responder DaemonSet, wait until every scheduled pod is ready, and remove what
// was created afterwards (also on failure and Ctrl-C), as `cilium connectivity test` does with its namespace.
// The DaemonSet reads two objects of its own namespace: Secret flatnet-probe-token (the token a dial must present;
// created with a random token when missing) and ConfigMap flatnet-config's net-conf.json (the cluster CIDRs a dial may
// target; copied from the agent's namespace when missing). What the deploy created, it removes.

/** Marks a DaemonSet (and namespace) `flatnet check --deploy` created: only those are removed afterwards. */
export const DEPLOYED_BY = { key: "flatnet.io/deployed-by", value: "flatnet-check" } as const;
export const PROBE_MANIFEST = "deploy/probe-daemonset.yaml";
/** The agent's namespace and ConfigMap (deploy/): where a responder namespace's net-conf.json is copied from. */
export const AGENT_NAMESPACE = "flatnet-system";
export const NET_CONF_CONFIGMAP = "flatnet-config";
const NET_CONF_KEY = "net-conf.json";

const daemonSetSchema = z.object({
  apiVersion: z.literal("apps/v1"),
  kind: z.literal("DaemonSet"),
  metadata: z.object({ name: z.string().min(1), namespace: z.string().optional(), annotations: z.record(z.string(), z.string()).optional() }).loose(),
  spec: z.record(z.string(), z.unknown()),
});
type DaemonSet = z.infer<typeof daemonSetSchema>;

const statusSchema = z.object({
  metadata: z.object({ generation: z.number().optional(), annotations: z.record(z.string(), z.string()).optional() }).loose(),
  status: z
    .object({
      observedGeneration: z.number().optional(),
      desiredNumberScheduled: z.number().optional(),
      numberReady: z.number().optional(),
      updatedNumberScheduled: z.number().optional(),
    })
    .loose()
    .optional(),
});

export interface DeployOptions {
  namespace: string;
  /** The DaemonSet manifest; default deploy/probe-daemonset.yaml of the checkout this code runs from. */
  manifestPath?: string;
  timeoutMs: number;
  pollMs?: number;
  signal?: AbortSignal;
  progress?: (line: string) => void;
}

export interface ProbeDeployment {
  namespace: string;
  name: string;
  created: { namespace: boolean; secret: boolean; configMap: boolean; daemonSet: boolean };
  /** Deletes what this deployment created (404s are fine: already gone). */
  remove(): Promise<void>;
}

/** deploy/probe-daemonset.yaml, found upwards from this module (src/probe or dist) in a checkout. */
export function findProbeManifest(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, PROBE_MANIFEST))) return join(dir, PROBE_MANIFEST);
    if (dirname(dir) === dir) return undefined;
  }
}

/** Reads and checks the DaemonSet manifest; the error names the file and what is wrong. */
export function loadProbeDaemonSet(path: string): DaemonSet {
  let data: unknown;
  try {
    data = parseYaml(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`cannot read the responder DaemonSet "${path}": ${(error as Error).message}`);
  }
  const parsed = daemonSetSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`"${path}" is not an apps/v1 DaemonSet: "${issue?.path.join(".")}" ${issue?.message}`);
  }
  return parsed.data;
}

/** Whether a DaemonSet's status says every scheduled pod runs the current spec and is ready. */
export function daemonSetReady(object: z.infer<typeof statusSchema>): boolean {
  const status = object.status ?? {};
  const desired = status.desiredNumberScheduled ?? 0;
  return (
    (status.observedGeneration ?? 0) >= (object.metadata.generation ?? 1) &&
    desired > 0 &&
    status.numberReady === desired &&
    (status.updatedNumberScheduled ?? desired) === desired
  );
}

/** Applies the responder DaemonSet in `namespace` (creating the namespace if missing) and waits until it is ready. */
export async function deployProbeResponders(client: KubeClient, options: DeployOptions): Promise<ProbeDeployment> {
  const manifestPath = options.manifestPath ?? findProbeManifest();
  if (manifestPath === undefined) throw new Error(`${PROBE_MANIFEST} not found above ${dirname(fileURLToPath(import.meta.url))}; run from a checkout of flatnet`);
  const manifest = loadProbeDaemonSet(manifestPath);
  const { namespace } = options;
  const name = manifest.metadata.name;
  const say = options.progress ?? (() => undefined);
  const nsPath = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
  const dsPath = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets`;
  const created = { namespace: false, secret: false, configMap: false, daemonSet: false };
  const deployment: ProbeDeployment = {
    namespace,
    name,
    created,
    async remove() {
      const owned: [boolean, string, string][] = [
        [created.daemonSet, `daemonset ${namespace}/${name}`, `${dsPath}/${encodeURIComponent(name)}?propagationPolicy=Background`],
        [created.configMap, `configmap ${namespace}/${NET_CONF_CONFIGMAP}`, `${nsPath}/configmaps/${NET_CONF_CONFIGMAP}`],
        [created.secret, `secret ${namespace}/${PROBE_TOKEN_SECRET}`, `${nsPath}/secrets/${PROBE_TOKEN_SECRET}`],
        [created.namespace, `namespace ${namespace}`, `${nsPath}?propagationPolicy=Background`],
      ];
      for (const [made, what, path] of owned) {
        if (!made) continue;
        say(`removing ${what}`);
        await deleteIgnoringMissing(client, path);
      }
    },
  };
  try {
    const namespaceObject = { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, ...marked } };
    created.namespace = await createIfMissing(client, `namespace "${namespace}"`, nsPath, "/api/v1/namespaces", () => namespaceObject);
    if (created.namespace) say(`created namespace ${namespace}`);
    created.secret = await ensureProbeTokenSecret(client, namespace, say);
    created.configMap = await ensureNetConf(client, namespace, say);
    const object = {
      ...manifest,
      metadata: { ...manifest.metadata, namespace, annotations: { ...manifest.metadata.annotations, [DEPLOYED_BY.key]: DEPLOYED_BY.value } },
    };
    const made = await client.requestJson("POST", dsPath, object);
    if (made.status === 201) {
      created.daemonSet = true;
      say(`created daemonset ${namespace}/${name}`);
    } else if (made.status === 409) {
      // Already there: one left by an interrupted --deploy is ours to remove; one applied by hand stays.
      const existing = statusSchema.parse((await client.requestJson("GET", `${dsPath}/${encodeURIComponent(name)}`)).body);
      created.daemonSet = existing.metadata.annotations?.[DEPLOYED_BY.key] === DEPLOYED_BY.value;
      say(`daemonset ${namespace}/${name} exists${created.daemonSet ? " (left by an earlier --deploy; removed afterwards)" : " (applied by hand; left in place)"}`);
    } else {
      throw new Error(`creating daemonset ${namespace}/${name} answered HTTP ${made.status}: ${made.message}`);
    }
    await waitReady(client, `${dsPath}/${encodeURIComponent(name)}`, `${namespace}/${name}`, options, say);
    return deployment;
  } catch (error) {
    await deployment.remove().catch(() => undefined);
    throw error;
  }
}

const marked = { labels: { [DEPLOYED_BY.key]: DEPLOYED_BY.value } };

/** Secret flatnet-probe-token in `namespace`: kept if there, else created with a random token. Whether it was created. */
async function ensureProbeTokenSecret(client: KubeClient, namespace: string, say: (line: string) => void): Promise<boolean> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const label = `secret ${namespace}/${PROBE_TOKEN_SECRET}`;
  const made = await createIfMissing(client, label, `${path}/${PROBE_TOKEN_SECRET}`, path, () => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: PROBE_TOKEN_SECRET, ...marked },
    type: "Opaque",
    data: { token: Buffer.from(randomBytes(24).toString("hex")).toString("base64") },
  }));
  if (made) say(`created ${label} (a random probe token)`);
  return made;
}

/** ConfigMap flatnet-config in `namespace`: kept if there, else its net-conf.json copied from the agent's. Whether it was created. */
async function ensureNetConf(client: KubeClient, namespace: string, say: (line: string) => void): Promise<boolean> {
  const at = (ns: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps`;
  const label = `configmap ${namespace}/${NET_CONF_CONFIGMAP}`;
  const source = `${AGENT_NAMESPACE}/${NET_CONF_CONFIGMAP}`;
  const made = await createIfMissing(client, label, `${at(namespace)}/${NET_CONF_CONFIGMAP}`, at(namespace), async () => {
    const agent = await client.requestJson("GET", `${at(AGENT_NAMESPACE)}/${NET_CONF_CONFIGMAP}`);
    const netConf = agent.status === 200 ? (agent.body as { data?: Record<string, unknown> } | undefined)?.data?.[NET_CONF_KEY] : undefined;
    if (typeof netConf !== "string") {
      const why = agent.status === 200 ? `has no key "${NET_CONF_KEY}"` : `answered HTTP ${agent.status}: ${agent.message}`;
      throw new Error(`the responders in "${namespace}" mount ${label} (key ${NET_CONF_KEY}); copying it from ${source} failed: ${source} ${why}; install the agent (deploy/) or create it in "${namespace}"`);
    }
    return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: NET_CONF_CONFIGMAP, ...marked }, data: { [NET_CONF_KEY]: netConf } };
  });
  if (made) say(`created ${label} (${NET_CONF_KEY} copied from ${source})`);
  return made;
}

/** GET `path`; when it is missing (404), POST what `create` gives to `collection`. Whether it was created. */
async function createIfMissing(client: KubeClient, label: string, path: string, collection: string, create: () => object | Promise<object>): Promise<boolean> {
  const existing = await client.requestJson("GET", path);
  if (existing.status === 200) return false;
  if (existing.status !== 404) throw new Error(`reading ${label} answered HTTP ${existing.status}: ${existing.message}`);
  const made = await client.requestJson("POST", collection, await create());
  if (made.status !== 201) throw new Error(`creating ${label} answered HTTP ${made.status}: ${made.message}`);
  return true;
}

async function waitReady(client: KubeClient, path: string, label: string, options: DeployOptions, say: (line: string) => void): Promise<void> {
  let now = "";
  let generations = "";
  const pollMs = options.pollMs ?? 1_000;
  const ready = await waitFor(
    async () => {
      if (options.signal?.aborted) throw new Error(`interrupted while waiting for daemonset ${label}`);
      const answer = await client.requestJson("GET", path);
      if (answer.status !== 200) throw new Error(`reading daemonset ${label} answered HTTP ${answer.status}: ${answer.message}`);
      const ds = statusSchema.parse(answer.body);
      const seen = `${ds.status?.numberReady ?? 0}/${ds.status?.desiredNumberScheduled ?? 0} ready`;
      if (daemonSetReady(ds)) say(`daemonset ${label}: ${seen}`);
      else if (seen !== now) say(`waiting for daemonset ${label}: ${seen}`);
      now = seen;
      generations = `generation ${ds.metadata.generation ?? "?"} observed ${ds.status?.observedGeneration ?? "none"}`;
      return daemonSetReady(ds);
    },
    { timeoutMs: options.timeoutMs, intervalMs: pollMs, maxIntervalMs: pollMs, ...(options.signal ? { signal: options.signal } : {}) },
  );
  if (!ready) {
    throw new Error(`daemonset ${label} not ready within ${options.timeoutMs / 1000} s (${now}, ${generations}); see kubectl -n ${label.split("/")[0]} describe daemonset`);
  }
}

async function deleteIgnoringMissing(client: KubeClient, path: string): Promise<void> {
  const answer = await client.requestJson("DELETE", path);
  if (answer.status !== 200 && answer.status !== 202 && answer.status !== 404) {
    throw new Error(`DELETE ${path.split("?")[0]} answered HTTP ${answer.status}: ${answer.message}`);
  }
}
