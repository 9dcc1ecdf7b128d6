import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Node,
} from "@kubernetes/client-node";
import { annotationKeys, type ClusterSnapshot, DEFAULT_ANNOTATION_PREFIX, kubeNodePodCidrs, nodeSnapshotFromKube, type NodeSnapshot } from "@flatnet/core";
import { DatastoreError, type Datastore, type NodeRegistration } from "./datastore.ts";
import { parseNetworkConfig, type NetworkConfig, type NetworkConfigInput } from "../config/network-config.ts";
import { chooseNodeCidrs, insideClusterCidrs } from "./node-cidrs.ts";
import { LeaseLeader } from "./kube-lease-leader.ts";
import { registrationAnnotations, relevantFingerprint } from "./kube-node.ts";

export type PodCidrAllocator = "kubernetes" | "flatnet";

export interface KubeDatastoreOptions {
  kubeConfig: KubeConfig;
  /** From the ConfigMap; its cluster CIDRs must match kube-controller-manager's --cluster-cidr. */
  networkConfig: NetworkConfigInput;
  /** "kubernetes": kube-controller-manager --allocate-node-cidrs fills spec.podCIDRs (default);
   *  "flatnet": the agents elect a leader on a Lease and it allocates with the cluster IPAM. */
  podCidrAllocator?: PodCidrAllocator;
  annotationPrefix?: string;
  /** Namespace and name of the leader Lease; default kube-system/flatnet-ipam. */
  leaseNamespace?: string;
  leaseName?: string;
  /** This agent's identity in the Lease; default the node name given to register(). */
  identity?: string;
  leaseDurationSeconds?: number;
  /** How long register() waits for spec.podCIDRs; default 120 s. */
  podCidrTimeoutMs?: number;
  /** Reports watch failures and restarts (logs, metrics). */
  onEvent?: (event: { kind: "watch-error" | "watch-restart" | "relist" | "allocate" | "allocate-error"; message: string }) => void;
}


/**
 * Loads a kubeconfig: the given file, else the in-cluster service account (KUBERNETES_SERVICE_HOST set; token and
 * CA at inClusterPathPrefix + /var/run/secrets/kubernetes.io/serviceaccount/), else $KUBECONFIG or ~/.kube/config.
 */
export function loadKubeConfig(options: { path?: string; inClusterPathPrefix?: string; env?: NodeJS.ProcessEnv } = {}): KubeConfig {
  const env = options.env ?? process.env;
  const config = new KubeConfig();
  if (options.path) config.loadFromFile(options.path);
  else if (env.KUBERNETES_SERVICE_HOST) config.loadFromCluster(options.inClusterPathPrefix);
  else config.loadFromDefault();
  return config;
}

const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 30_000;

/** The IPAM leader's Lease; deploy/rbac.yaml grants get/update on this name only. */
export const DEFAULT_IPAM_LEASE = "flatnet-ipam";

export class KubeDatastore implements Datastore {
  readonly kind = "kubernetes" as const;
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly prefix: string;
  private readonly network: NetworkConfig;
  private informer: ListWatch<V1Node> | undefined;
  private started: Promise<void> | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly fingerprints = new Map<string, string>();
  private readonly registered = new Map<string, NodeRegistration>();
  private failures = 0;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private leader: LeaseLeader | undefined;
  private leaderTimer: ReturnType<typeof setTimeout> | undefined;
  private allocating = false;
  private closed = false;

  constructor(private readonly options: KubeDatastoreOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.coordination = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.prefix = options.annotationPrefix ?? DEFAULT_ANNOTATION_PREFIX;
    this.network = parseNetworkConfig(options.networkConfig, "networkConfig option");
  }

  async config(): Promise<NetworkConfig> {
    return this.network;
  }

  /** Starts the Node informer (list, then watch with bookmarks); resolves after the first list. */
  start(): Promise<void> {
    this.started ??= this.startInformer();
    return this.started;
  }

  private async startInformer(): Promise<void> {
    const watch = new Watch(this.options.kubeConfig);
    // The client's ListWatch does not ask for bookmarks; they keep an idle watch's resourceVersion fresh,
    // so a reconnect resumes instead of hitting 410 Gone and re-listing every Node.
    const bookmarked = {
      watch: (path: string, query: Record<string, unknown>, callback: never, done: never) =>
        watch.watch(path, { ...query, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) }, callback, done),
    } as unknown as Watch;
    const informer = new ListWatch<V1Node>("/api/v1/nodes", bookmarked, async () => {
      this.options.onEvent?.({ kind: "relist", message: "listing nodes" });
      return await this.core.listNode();
    }, false);
    this.informer = informer;
    const changed = (node: V1Node) => {
      this.failures = 0;
      const name = node.metadata?.name ?? "";
      const fingerprint = relevantFingerprint(node, this.prefix);
      if (this.fingerprints.get(name) === fingerprint) return; // kubelet's status heartbeat: nothing we use changed
      this.fingerprints.set(name, fingerprint);
      this.signal();
      this.kickAllocator();
    };
    informer.on("add", changed);
    informer.on("update", changed);
    informer.on("delete", (node: V1Node) => {
      this.fingerprints.delete(node.metadata?.name ?? "");
      this.signal();
    });
    // A watch that fails (not 410, which the informer handles by re-listing) stops the informer: restart it with backoff.
    informer.on("error", (error: unknown) => {
      if (this.closed) return;
      this.options.onEvent?.({ kind: "watch-error", message: describe(error) });
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.failures);
      this.failures++;
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this.closed) return;
        this.options.onEvent?.({ kind: "watch-restart", message: `after ${delay} ms` });
        void informer.start();
      }, delay);
    });
    await informer.start();
    if (this.options.podCidrAllocator === "flatnet") this.runLeaderLoop();
  }

  async register(node: NodeRegistration): Promise<NodeSnapshot> {
    await this.start();
    try {
      await this.patchNode(node.name, { metadata: { annotations: registrationAnnotations(node, this.prefix, this.network.backend) } });
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) {
        throw new DatastoreError("ERR_NOT_FOUND", `Node "${node.name}" does not exist: --node must be the kubelet's node name (spec.nodeName)`, { cause: error });
      }
      throw error;
    }
    this.registered.set(node.name, node);
    this.leaderIdentity ??= this.options.identity ?? node.name;
    this.kickAllocator();
    const snapshot = await this.waitForPodCidrs(node.name);
    return { ...snapshot, underlayIps: node.underlayIps, vtepMac: node.vtepMac };
  }

  private async waitForPodCidrs(name: string): Promise<NodeSnapshot> {
    const timeoutMs = this.options.podCidrTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const node = this.informer?.get(name);
      const view = node ? nodeSnapshotFromKube(node, this.prefix) : undefined;
      if (view?.success) return view.data;
      if (Date.now() > deadline) {
        const hint = this.options.podCidrAllocator === "flatnet"
          ? "no flatnet agent holds the IPAM lease or the cluster CIDR is exhausted"
          : "is kube-controller-manager running with --allocate-node-cidrs? Otherwise set podCidrAllocator: flatnet";
        throw new DatastoreError("ERR_NO_POD_CIDR", `Node "${name}" has no spec.podCIDRs after ${timeoutMs} ms: ${hint}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(10, Math.min(1000, deadline - Date.now())));
        const unsubscribe = this.watch(done);
        function done() {
          clearTimeout(timer);
          unsubscribe();
          resolve();
        }
      });
    }
  }

  async heartbeat(name: string): Promise<void> {
    // Node liveness is kubelet's job (its own Lease in kube-node-lease). Here: re-publish our annotations if
    // someone removed or changed them, and write nothing otherwise.
    const registration = this.registered.get(name);
    if (!registration) throw new DatastoreError("ERR_NOT_FOUND", `node "${name}" was not registered by this agent; register it first`);
    const node = this.informer?.get(name);
    if (this.informer && !node) throw new DatastoreError("ERR_NOT_FOUND", `Node "${name}" no longer exists in the apiserver`);
    const wanted = registrationAnnotations(registration, this.prefix, this.network.backend);
    const current = node?.metadata?.annotations ?? {};
    if (Object.entries(wanted).every(([k, v]) => current[k] === v)) return;
    await this.patchNode(name, { metadata: { annotations: wanted } });
  }

  async remove(name: string): Promise<void> {
    // An agent writes only its own Node: one it registered, never a peer's.
    if (!this.registered.has(name)) throw new DatastoreError("ERR_NOT_FOUND", `node "${name}" was not registered by this agent; an agent removes only its own Node's annotations`);
    // The Node object belongs to kubelet and the cloud controller: only flatnet's annotations go.
    this.registered.delete(name);
    const annotations = Object.fromEntries(Object.values(annotationKeys(this.prefix)).map((key) => [key, null]));
    try {
      await this.patchNode(name, { metadata: { annotations } }, PatchStrategy.MergePatch);
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 404)) throw error;
    }
  }

  async snapshot(): Promise<ClusterSnapshot> {
    await this.start();
    const nodes = (this.informer?.list() ?? [])
      .filter((node) => !node.metadata?.deletionTimestamp)
      .flatMap((node) => nodeSnapshotFromKube(node, this.prefix).data ?? [])
      .sort((a, b) => a.name.localeCompare(b.name));
    return { clusterCidrs: this.network.clusterCidrs, nodes };
  }

  watch(onChange: () => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }

  private patchNode(name: string, body: object, strategy: PatchStrategy = PatchStrategy.StrategicMergePatch): Promise<V1Node> {
    return this.core.patchNode({ name, body }, setHeaderOptions("Content-Type", strategy));
  }

  private signal(): void {
    for (const listener of [...this.listeners]) listener();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.leaderTimer) clearTimeout(this.leaderTimer);
    this.listeners.clear();
    await this.informer?.stop();
    await this.leader?.release();
  }

  // ---- flatnet's own pod CIDR allocator (only with podCidrAllocator: "flatnet") ----

  private leaderIdentity: string | undefined;

  /** Whether this agent currently holds the IPAM Lease. */
  get isLeader(): boolean {
    return this.leader?.isLeader ?? false;
  }

  private runLeaderLoop(): void {
    const duration = this.options.leaseDurationSeconds ?? 15;
    const round = async () => {
      this.leaderTimer = undefined;
      if (this.closed) return;
      let retryMs = (duration * 1000) / 3;
      if (this.leaderIdentity) {
        this.leader ??= new LeaseLeader({
          api: this.coordination,
          namespace: this.options.leaseNamespace ?? "kube-system",
          name: this.options.leaseName ?? DEFAULT_IPAM_LEASE,
          identity: this.leaderIdentity,
          leaseDurationSeconds: duration,
        });
        try {
          if (await this.leader.tryAcquireOrRenew()) await this.allocateMissing();
        } catch (error) {
          this.options.onEvent?.({ kind: "allocate-error", message: describe(error) });
          retryMs = Math.min(retryMs, 1000);
        }
      } else {
        retryMs = 200; // not registered yet: no identity to lead with
      }
      if (!this.closed) this.leaderTimer = setTimeout(() => void round(), retryMs);
    };
    void round();
  }

  private kickAllocator(): void {
    if (this.leader?.isLeader) void this.allocateMissing().catch((error) => this.options.onEvent?.({ kind: "allocate-error", message: describe(error) }));
  }

  /** Gives every Node without spec.podCIDRs one CIDR per cluster CIDR; the apiserver refuses to change a set one. */
  private async allocateMissing(): Promise<void> {
    if (this.allocating || !this.leader?.isLeader) return;
    this.allocating = true;
    try {
      const nodes = this.informer?.list() ?? [];
      const taken = new Map(
        nodes.flatMap((n) => kubeNodePodCidrs(n).filter((c) => insideClusterCidrs(this.network, c)).map((c) => [c, n.metadata?.name ?? ""] as [string, string])),
      );
      for (const node of [...nodes].sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""))) {
        if (kubeNodePodCidrs(node).length > 0 || node.metadata?.deletionTimestamp || !this.leader?.isLeader) continue;
        const name = node.metadata?.name ?? "";
        let cidrs: string[];
        try {
          cidrs = chooseNodeCidrs(this.network, name, taken);
        } catch (error) {
          this.options.onEvent?.({ kind: "allocate-error", message: `node "${name}": ${describe(error)}` });
          return;
        }
        try {
          // resourceVersion makes this a compare-and-swap: a Node changed since our cache read gets 409 and waits a round.
          const spec = { podCIDR: cidrs[0], podCIDRs: cidrs };
          await this.patchNode(name, { metadata: { resourceVersion: node.metadata?.resourceVersion }, spec }, PatchStrategy.MergePatch);
          for (const c of cidrs) taken.set(c, name);
          this.options.onEvent?.({ kind: "allocate", message: `node "${name}": ${cidrs.join(",")}` });
        } catch (error) {
          if (error instanceof ApiException && (error.code === 409 || error.code === 422 || error.code === 404)) continue;
          throw error;
        }
      }
    } finally {
      this.allocating = false;
    }
  }
}

function describe(error: unknown): string {
  if (error instanceof ApiException) return `HTTP ${error.code}: ${typeof error.body === "string" ? error.body.slice(0, 200) : JSON.stringify(error.body)?.slice(0, 200)}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
