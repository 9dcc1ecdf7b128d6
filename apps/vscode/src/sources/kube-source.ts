/**
 * A live Kubernetes cluster: informers on /api/v1/nodes and /api/v1/pods (list + watch, resumed from the
 * last resourceVersion by client-node). client-node stops an informer on any error other than a timeout or
 * 410, so we restart it with exponential backoff and show "reconnecting" meanwhile.
 */
import { CoreV1Api, type KubeConfig, type KubernetesObject, makeInformer } from "@kubernetes/client-node";
import type { ClusterView } from "../model/cluster-view.ts";
import { buildKubeView } from "./kube-mapping.ts";
import type { ClusterSource } from "./source.ts";

export interface KubeSourceOptions {
  context: string;
  agentSelector: Record<string, string>;
  debounceMs: number;
}

/** One line for a human: `HTTP 404: the server could not find the requested resource`, not a dump of headers. */
export function describeKubeError(error: unknown): string {
  const e = error as { code?: unknown; body?: unknown; message?: unknown } | undefined;
  if (e && typeof e.code === "number") {
    let message: string | undefined;
    try {
      const body = typeof e.body === "string" ? JSON.parse(e.body) : e.body;
      if (body && typeof body.message === "string") message = body.message;
    } catch {
      message = undefined;
    }
    return `HTTP ${e.code}${message ? `: ${message}` : ""}`;
  }
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split("\n")[0] ?? text;
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

type AnyInformer = ReturnType<typeof makeInformer<KubernetesObject>>;

export class KubeSource implements ClusterSource {
  readonly id: string;
  #informers: AnyInformer[] = [];
  #view: ClusterView | undefined;
  #status: ClusterView["status"] = { state: "connecting", message: "connecting" };
  #debounce: ReturnType<typeof setTimeout> | undefined;
  /** Per informer: a pending restart and its current backoff (nodes and pods fail independently). */
  readonly #retries = new Map<AnyInformer, { timer: ReturnType<typeof setTimeout> | undefined; backoffMs: number }>();
  #disposed = false;
  #onChange: () => void = () => {};

  constructor(
    private readonly config: KubeConfig,
    private readonly options: KubeSourceOptions,
  ) {
    this.id = `kubernetes:${options.context}`;
  }

  view(): ClusterView | undefined {
    return this.#view ? { ...this.#view, status: this.#status } : { id: this.id, name: this.options.context, source: "kubernetes", clusterCidrs: [], nodes: [], pods: [], status: this.#status };
  }

  start(onChange: () => void): void {
    this.#onChange = onChange;
    const config = this.config;
    config.setCurrentContext(this.options.context);
    const core = config.makeApiClient(CoreV1Api);
    const nodes = makeInformer(config, "/api/v1/nodes", () => core.listNode()) as unknown as AnyInformer;
    const pods = makeInformer(config, "/api/v1/pods", () => core.listPodForAllNamespaces()) as unknown as AnyInformer;
    this.#informers = [nodes, pods];
    for (const informer of this.#informers) {
      for (const verb of ["add", "update", "delete"] as const) informer.on(verb, () => this.#changed());
      informer.on("connect", () => {
        this.#retries.delete(informer);
        if ([...this.#retries.values()].every((retry) => retry.timer === undefined)) this.#setStatus({ state: "ready" });
      });
      informer.on("error", (error: unknown) => this.#failed(informer, error));
    }
    for (const informer of this.#informers) informer.start().catch((error: unknown) => this.#failed(informer, error));
  }

  #setStatus(status: ClusterView["status"]): void {
    this.#status = status;
    this.#changed();
  }

  #failed(informer: AnyInformer, error: unknown): void {
    const retry = this.#retries.get(informer) ?? { timer: undefined, backoffMs: 1000 };
    if (this.#disposed || retry.timer) return;
    const seconds = Math.round(retry.backoffMs / 1000);
    this.#setStatus({ state: "reconnecting", message: `watch disconnected (${describeKubeError(error)}), retrying in ${seconds} s` });
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      if (this.#disposed) return;
      informer.start().catch((next: unknown) => this.#failed(informer, next));
    }, retry.backoffMs);
    retry.backoffMs = Math.min(30_000, retry.backoffMs * 2);
    this.#retries.set(informer, retry);
  }

  /** Coalesces bursts of watch events (a rollout sends hundreds) into one rebuild. */
  #changed(): void {
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      if (this.#disposed) return;
      const [nodes, pods] = this.#informers;
      const { view } = buildKubeView(this.id, this.options.context, { nodes: nodes?.list() ?? [], pods: pods?.list() ?? [] }, this.options.agentSelector);
      this.#view = view;
      this.#onChange();
    }, this.options.debounceMs);
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#debounce);
    for (const retry of this.#retries.values()) clearTimeout(retry.timer);
    for (const informer of this.#informers) void informer.stop().catch(() => {});
  }
}
