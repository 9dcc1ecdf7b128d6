import { z } from "zod";

// The cluster-wide network config a datastore holds once (flannel's net-conf.json / etcd <prefix>/config).
// TODO(core-routes): switch to the core's NetworkConfig schema once packages/core/src/schema lands.
export const networkConfigSchema = z
  .object({
    clusterCidrs: z.array(z.string().min(1)).min(1).max(2),
    backend: z.enum(["host-gw", "vxlan", "auto"]).default("vxlan"),
    nodeMaskIPv4: z.number().int().min(0).max(32).default(24),
    nodeMaskIPv6: z.number().int().min(0).max(128).default(64),
    vni: z.number().int().min(1).max(16_777_215).default(1),
    vxlanPort: z.number().int().min(1).max(65_535).default(8472),
  })
  .strict();

export type NetworkConfig = z.infer<typeof networkConfigSchema>;
export type NetworkConfigInput = z.input<typeof networkConfigSchema>;

/** Parses a network config from JSON data; the error names the bad key, its value and the rule. */
export function parseNetworkConfig(data: unknown, source = "network config"): NetworkConfig {
  const result = networkConfigSchema.safeParse(data);
  if (result.success) return result.data;
  throw new ConfigError(formatZodIssues(result.error, data, source));
}

export class ConfigError extends Error {
  readonly code = "ERR_INVALID_CONFIG";
  override readonly name = "ConfigError";
}

/** One line per issue: `source: key "a.b" = <value>: <rule>`. */
export function formatZodIssues(error: z.ZodError, data: unknown, source: string): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join(".");
      const value = valueAt(data, issue.path);
      const shown = value === undefined ? "missing" : JSON.stringify(value);
      return `${source}: key "${path || "(root)"}" = ${shown}: ${issue.message}`;
    })
    .join("\n");
}

function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let current: unknown = data;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
