/**
 * `flatnet.*` settings, validated with zod. A bad value is reported once by name with the rule it broke, and
 * that one setting falls back to its default: the rest of the configuration still applies.
 */
import { z } from "zod";
import { DEFAULT_LAB_STATE_DIR, LAB_PREFIX_PATTERN, LAB_PREFIX_RULE } from "@flatnet/core";

export const settingsSchema = z.object({
  kubeconfig: z.array(z.string().min(1)).default([]),
  contexts: z.array(z.string().min(1)).default([]),
  "kubernetes.enabled": z.boolean().default(true),
  agentLabelSelector: z.string().regex(/^\s*([\w./-]+=[\w.-]*\s*)(,\s*[\w./-]+=[\w.-]*\s*)*$/, "must be key=value terms joined by commas").default("app.kubernetes.io/name=flatnet"),
  "lab.enabled": z.boolean().default(true),
  "lab.stateDir": z.string().min(1).default(DEFAULT_LAB_STATE_DIR),
  // The rule of `flatnet lab up --prefix`: the lab's namespaces are named with it.
  "lab.prefix": z.string().regex(LAB_PREFIX_PATTERN, `must ${LAB_PREFIX_RULE}`).default("fn-"),
  fixture: z.string().default(""),
  cli: z.array(z.string().min(1)).min(1, "must name the flatnet command, e.g. [\"flatnet\"]").default(["flatnet"]),
  "probe.args": z.array(z.string()).default(["check", "--ndjson"]),
  "probe.replay": z.string().default(""),
  refreshDebounceMs: z.number().int().min(0).max(10_000).default(250),
});

export type Settings = z.infer<typeof settingsSchema>;
export const SETTING_KEYS = Object.keys(settingsSchema.shape) as (keyof Settings)[];

export interface SettingsResult {
  settings: Settings;
  /** One message per invalid setting: `flatnet.cli: must name the flatnet command...; using the default`. */
  problems: string[];
}

/** Settings that name what runs or what is read: restricted in untrusted workspaces, user-level by default. */
export const RESTRICTED_KEYS = ["cli", "probe.args", "kubeconfig"] as const satisfies readonly (keyof Settings)[];
/** Of those, the ones that choose a command line: a workspace value runs only after the user agrees. */
export const COMMAND_KEYS = ["cli", "probe.args"] as const satisfies readonly (keyof Settings)[];

export interface InspectedSetting {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

export interface ScopedSettings {
  /** What parseSettings should see for each key. */
  read: (key: string) => unknown;
  /** The command-line settings a workspace supplies, as one JSON key to ask consent for; undefined when none. */
  workspaceCommand: string | undefined;
}

/**
 * Picks each setting's value by scope: folder, then workspace, then user. In an untrusted workspace the
 * restricted settings come from the user only (VS Code's restrictedConfigurations do the same).
 */
export function scopeSettings(inspect: (key: string) => InspectedSetting | undefined, trusted: boolean): ScopedSettings {
  const localValue = (inspected: InspectedSetting | undefined) => inspected?.workspaceFolderValue ?? inspected?.workspaceValue;
  const read = (key: string) => {
    const inspected = inspect(key);
    const local = localValue(inspected);
    if (local === undefined || (!trusted && (RESTRICTED_KEYS as readonly string[]).includes(key))) return inspected?.globalValue;
    return local;
  };
  const command: Record<string, unknown> = {};
  for (const key of COMMAND_KEYS) {
    const local = localValue(inspect(key));
    if (trusted && local !== undefined) command[key] = local;
  }
  return { read, workspaceCommand: Object.keys(command).length > 0 ? JSON.stringify(command) : undefined };
}

/** Validates each setting on its own, so one bad value does not discard the others. */
export function parseSettings(read: (key: string) => unknown): SettingsResult {
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const value = read(key);
    if (value === undefined) continue;
    const field = settingsSchema.shape[key];
    const parsed = field.safeParse(value);
    if (parsed.success) raw[key] = value;
    else problems.push(`flatnet.${key}: ${JSON.stringify(value)} ${parsed.error.issues[0]?.message ?? "is invalid"}; using the default`);
  }
  return { settings: settingsSchema.parse(raw), problems };
}
