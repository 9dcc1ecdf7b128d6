import { networkConfigSchema, safeParseSchema, type NetworkConfig, type NetworkConfigInput } from "@flatnet/core";

// The cluster-wide network config a datastore holds once (flannel's net-conf.json, the etcd key <prefix>/config,
// the ConfigMap's net-conf.json). The schema is the core's; this is the agent's throwing edge.
export { networkConfigSchema, type NetworkConfig, type NetworkConfigInput };

/** A config file, env or flag value that breaks a rule; the message names the key, the value and the rule. */
export class ConfigError extends Error {
  readonly code = "ERR_INVALID_CONFIG";
  override readonly name = "ConfigError";
}

/** Parses a network config from JSON data; throws a ConfigError naming the bad key, its value and the rule. */
export function parseNetworkConfig(data: unknown, source = "network config"): NetworkConfig {
  const result = safeParseSchema(networkConfigSchema, data, source);
  if (result.success) return result.data;
  throw new ConfigError(result.error.message, { cause: result.error });
}
