import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { interfaceName } from "@flatnet/core";
import { z } from "zod";
import { parseHostPort } from "./metrics-address.ts";
import { ConfigError } from "./network-config.ts";

// The agent's settings come from four layers, highest first: command-line flags > FLATNET_* environment >
// config file (--config / FLATNET_CONFIG, YAML or JSON) > defaults. Each value is validated by zod, and an error
// names the key, the layer it came from (flag, env var or file) and the rule.

const duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)?$/, 'must be a duration such as "10s", "500ms" or "2m"');
const list = z.preprocess(
  (value) => (typeof value === "string" ? value.split(",").map((s) => s.trim()).filter(Boolean) : value),
  z.array(z.string().min(1)),
);
const boolean = z.preprocess((value) => {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  return value;
}, z.boolean());

/** Every setting the config layers may give (commander option keys, camelCase). */
export const agentSettingsSchema = z
  .object({
    node: z.string().min(1).optional(),
    netns: z.string().min(1).optional(),
    datastore: z.enum(["embedded", "etcd", "kubernetes"], { error: 'must be one of "embedded", "etcd", "kubernetes"' }).optional(),
    store: z.string().min(1).optional(),
    networkConfig: z.string().min(1).optional(),
    underlayDevice: interfaceName.optional(),
    underlayCanReach: z.union([z.ipv4(), z.ipv6()], { error: "must be an IP address (IPv4 or IPv6)" }).optional(),
    underlayIp: list.optional(),
    nodeIp: z.union([z.ipv4(), z.ipv6()], { error: "must be an IP address (IPv4 or IPv6)" }).optional(),
    socket: z.string().min(1).optional(),
    resyncInterval: duration.optional(),
    leaseTtl: duration.optional(),
    masquerade: boolean.optional(),
    vxlanDevice: interfaceName.optional(),
    logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).optional(),
    etcdEndpoints: list.pipe(z.array(z.url({ error: "must be a list of URLs such as http://10.0.0.1:2379" }))).optional(),
    etcdPrefix: z.string().startsWith("/", "must start with /").optional(),
    kubeconfig: z.string().min(1).optional(),
    podCidrAllocator: z.enum(["kubernetes", "flatnet"], { error: 'must be "kubernetes" (kube-controller-manager) or "flatnet"' }).optional(),
    subnetFile: z.string().startsWith("/", "must be an absolute path").optional(),
    leaseNamespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Kubernetes namespace name").optional(),
    // The read-only TCP listener for /metrics, /healthz, /readyz (off when unset).
    metricsAddress: z
      .string()
      .superRefine((value, ctx) => {
        const parsed = parseHostPort(value);
        if ("error" in parsed) ctx.addIssue({ code: "custom", message: parsed.error });
      })
      .optional(),
  })
  .strict();

export type AgentSettings = z.output<typeof agentSettingsSchema>;
export type SettingKey = keyof AgentSettings;
const KEYS = Object.keys(agentSettingsSchema.shape) as SettingKey[];

/** FLATNET_ETCD_ENDPOINTS for etcdEndpoints. */
export function envName(key: string): string {
  return `FLATNET_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** --etcd-endpoints for etcdEndpoints. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export interface SettingLayers {
  /** Values commander parsed, with where each came from ("cli", "default", ...). */
  flags: Record<string, unknown>;
  flagSource: (key: string) => string | undefined;
  env: Record<string, string | undefined>;
  /** The config file's path (or undefined: FLATNET_CONFIG, then none). */
  configPath?: string;
}

/**
 * Merges flags > FLATNET_* env > config file > flag defaults into validated settings.
 * Throws a ConfigError whose message names the bad key, its layer and value, and the rule.
 */
export function resolveAgentSettings(layers: SettingLayers): AgentSettings & { sources: Record<string, string> } {
  const configPath = layers.configPath ?? layers.env.FLATNET_CONFIG;
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const merged: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const key of KEYS) {
    const fromFlags = layers.flags[key];
    const flagSource = layers.flagSource(key);
    const fromEnv = layers.env[envName(key)];
    if (fromFlags !== undefined && flagSource !== undefined && flagSource !== "default") {
      merged[key] = fromFlags;
      sources[key] = `flag ${flagName(key)}`;
    } else if (fromEnv !== undefined && fromEnv !== "") {
      merged[key] = fromEnv;
      sources[key] = `env ${envName(key)}`;
    } else if (key in file) {
      merged[key] = file[key];
      sources[key] = `${configPath} key "${key}"`;
    } else if (fromFlags !== undefined && !(Array.isArray(fromFlags) && fromFlags.length === 0)) {
      merged[key] = fromFlags;
      sources[key] = `default of ${flagName(key)}`;
    }
  }
  for (const key of Object.keys(file)) {
    if (!KEYS.includes(key as SettingKey)) {
      throw new ConfigError(`${configPath}: key "${key}" is unknown; known keys: ${KEYS.join(", ")}`);
    }
  }
  const parsed = agentSettingsSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues
        .map((issue) => {
          const key = String(issue.path[0] ?? "");
          return `${sources[key] ?? key} = ${quote(merged[key])}: ${issue.message}`;
        })
        .join("\n"),
    );
  }
  return { ...parsed.data, sources };
}

/** A value as an error quotes it: its JSON, or what it is when it has none (YAML aliases can make a value contain itself). */
function quote(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return "(a value containing itself: a YAML alias cycle)";
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`config file "${path}" cannot be read: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text); // YAML 1.2 is a superset of JSON
  } catch (error) {
    throw new ConfigError(`config file "${path}" is not YAML or JSON: ${(error as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data)) throw new ConfigError(`config file "${path}" must hold a mapping of settings, not ${quote(data).slice(0, 40)}`);
  // Accept kebab-case keys too (the flags' spelling): etcd-endpoints -> etcdEndpoints.
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]));
}
