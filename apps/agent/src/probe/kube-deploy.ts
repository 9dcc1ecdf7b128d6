import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { KubeClient } from "./kube-source.ts";

// `flatnet check --deploy`: apply the responder DaemonSet, wait until every scheduled pod is ready, and remove what
// was created afterwards (also on failure and Ctrl-C), as `cilium connectivity test` does with its namespace.

/** Marks a DaemonSet (and namespace) `flatnet check --deploy` created: only those are removed afterwards. */
export const DEPLOYED_BY = { key: "flatnet.io/deployed-by", value: "flatnet-check" } as const;
export const PROBE_MANIFEST = "deploy/probe-daemonset.yaml";

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
  created: { namespace: boolean; daemonSet: boolean };
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
  const created = { namespace: false, daemonSet: false };
  const deployment: ProbeDeployment = {
    namespace,
    name,
    created,
    async remove() {
      if (created.daemonSet) {
        say(`removing daemonset ${namespace}/${name}`);
        await deleteIgnoringMissing(client, `${dsPath}/${encodeURIComponent(name)}?propagationPolicy=Background`);
      }
      if (created.namespace) {
        say(`removing namespace ${namespace}`);
        await deleteIgnoringMissing(client, `${nsPath}?propagationPolicy=Background`);
      }
    },
  };
  try {
    const ns = await client.requestJson("GET", nsPath);
    if (ns.status === 404) {
      const made = await client.requestJson("POST", "/api/v1/namespaces", {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace, labels: { [DEPLOYED_BY.key]: DEPLOYED_BY.value } },
      });
      if (made.status !== 201) throw new Error(`creating namespace "${namespace}" answered HTTP ${made.status}: ${made.message}`);
      created.namespace = true;
      say(`created namespace ${namespace}`);
    } else if (ns.status !== 200) {
      throw new Error(`reading namespace "${namespace}" answered HTTP ${ns.status}: ${ns.message}`);
    }
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

async function waitReady(client: KubeClient, path: string, label: string, options: DeployOptions, say: (line: string) => void): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last = "";
  for (;;) {
    if (options.signal?.aborted) throw new Error(`interrupted while waiting for daemonset ${label}`);
    const answer = await client.requestJson("GET", path);
    if (answer.status !== 200) throw new Error(`reading daemonset ${label} answered HTTP ${answer.status}: ${answer.message}`);
    const ds = statusSchema.parse(answer.body);
    if (daemonSetReady(ds)) {
      say(`daemonset ${label}: ${ds.status?.numberReady}/${ds.status?.desiredNumberScheduled} ready`);
      return;
    }
    const now = `${ds.status?.numberReady ?? 0}/${ds.status?.desiredNumberScheduled ?? 0} ready`;
    if (now !== last) say(`waiting for daemonset ${label}: ${now}`);
    last = now;
    if (Date.now() >= deadline) {
      throw new Error(`daemonset ${label} not ready within ${options.timeoutMs / 1000} s (${now}, generation ${ds.metadata.generation ?? "?"} observed ${ds.status?.observedGeneration ?? "none"}); see kubectl -n ${label.split("/")[0]} describe daemonset`);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.pollMs ?? 1_000);
      options.signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}

async function deleteIgnoringMissing(client: KubeClient, path: string): Promise<void> {
  const answer = await client.requestJson("DELETE", path);
  if (answer.status !== 200 && answer.status !== 202 && answer.status !== 404) {
    throw new Error(`DELETE ${path.split("?")[0]} answered HTTP ${answer.status}: ${answer.message}`);
  }
}
