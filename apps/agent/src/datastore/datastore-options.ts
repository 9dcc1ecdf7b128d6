import { Option, type Command } from "commander";
import type { NetworkConfigInput } from "../config/network-config.ts";
import { ConfigError } from "../config/network-config.ts";
import { resolveAgentSettings } from "../config/agent-config.ts";
import { loadKubeConfig } from "./kube-datastore.ts";
import type { DatastoreOptions } from "./factory.ts";
import { datastoreStats } from "./datastore-stats.ts";

/** The agent flags for the etcd and Kubernetes datastores and the config file (added to `flatnet agent`). */
export interface ClusterFlags {
  datastore: string;
  store?: string;
  config?: string;
  etcdEndpoints?: string[];
  etcdPrefix?: string;
  kubeconfig?: string;
  podCidrAllocator?: string;
  leaseNamespace?: string;
  subnetFile?: string;
  /** HOST:PORT of the read-only TCP listener for /metrics, /healthz, /readyz; off when unset. */
  metricsAddress?: string;
}

export function addClusterOptions(command: Command): Command {
  return command
    .option("--config <path>", "agent settings file (YAML or JSON; keys as the flags, camelCase or kebab-case); also FLATNET_CONFIG")
    .option("--etcd-endpoints <urls>", "etcd client URLs, comma-separated (--datastore etcd)", (value: string) => value.split(",").map((s) => s.trim()).filter(Boolean))
    .option("--etcd-prefix <prefix>", "etcd key prefix (--datastore etcd)", "/flatnet")
    .option("--kubeconfig <path>", "kubeconfig (--datastore kubernetes); default: in-cluster service account, then $KUBECONFIG")
    .addOption(
      new Option("--pod-cidr-allocator <who>", "who fills Node spec.podCIDRs (--datastore kubernetes)").choices(["kubernetes", "flatnet"]).default("kubernetes"),
    )
    .option("--lease-namespace <ns>", "namespace of the IPAM leader Lease (--pod-cidr-allocator flatnet)", "kube-system")
    .option("--subnet-file <path>", "write this node's pod CIDRs and pod MTU here for the CNI plugin (netconf subnetFile)")
    .option(
      "--metrics-address <host:port>",
      "also serve GET /metrics, /healthz, /readyz (read-only) over TCP here, in the agent's netns, e.g. 10.0.0.5:9471; default off",
    );
}

/** Flags > FLATNET_* env > config file > defaults, validated; commander's parsed options with the layers applied. */
export function applyAgentSettings<T extends ClusterFlags>(options: T, command: Command, env: NodeJS.ProcessEnv = process.env): T {
  const settings = resolveAgentSettings({
    flags: options as unknown as Record<string, unknown>,
    flagSource: (key) => command.getOptionValueSource(key) ?? undefined,
    env,
    ...(options.config !== undefined ? { configPath: options.config } : {}),
  });
  const { sources: _sources, ...values } = settings;
  return { ...options, ...values };
}

/** The factory's options for the chosen datastore; a missing required setting is a ConfigError naming it. */
export function datastoreOptionsFor(
  options: ClusterFlags & { node?: string },
  common: { leaseTtlMs: number; networkConfig: NetworkConfigInput | undefined },
): DatastoreOptions {
  const { networkConfig, leaseTtlMs } = common;
  switch (options.datastore) {
    case "embedded":
      if (options.store === undefined) throw new ConfigError("--store <path> is required with --datastore embedded (or FLATNET_STORE)");
      return { kind: "embedded", path: options.store, leaseTtlMs, ...(networkConfig ? { networkConfig } : {}) };
    case "etcd":
      if (!options.etcdEndpoints?.length) throw new ConfigError("--etcd-endpoints <urls> is required with --datastore etcd (or FLATNET_ETCD_ENDPOINTS)");
      return {
        kind: "etcd",
        endpoints: options.etcdEndpoints,
        ...(options.etcdPrefix ? { prefix: options.etcdPrefix } : {}),
        // etcd grants leases in whole seconds and refuses TTLs below its minimum (about 2 s on defaults).
        nodeTtlSeconds: Math.max(2, Math.ceil(leaseTtlMs / 1000)),
        onWatchRestart: () => datastoreStats.recordEvent("watch-restart"),
        ...(networkConfig ? { networkConfig } : {}),
      };
    case "kubernetes": {
      if (!networkConfig) {
        throw new ConfigError("--network-config <path> is required with --datastore kubernetes (the ConfigMap's net-conf.json)");
      }
      return {
        kind: "kubernetes",
        kubeConfig: loadKubeConfig(options.kubeconfig ? { path: options.kubeconfig } : {}),
        networkConfig,
        podCidrAllocator: options.podCidrAllocator === "flatnet" ? "flatnet" : "kubernetes",
        ...(options.leaseNamespace ? { leaseNamespace: options.leaseNamespace } : {}),
        ...(options.node ? { identity: options.node } : {}),
        onEvent: (event) => datastoreStats.recordEvent(event.kind),
      };
    }
    default:
      throw new ConfigError(`--datastore "${options.datastore}" is not one of embedded, etcd, kubernetes`);
  }
}
