/**
 * Where the flatnet command is: the `flatnet.cli` setting when the user set it, else `flatnet` on PATH, else
 * the workspace's own build (`apps/agent/dist/main.js` of a flatnet clone). Pure: the file system is passed in.
 */
import { delimiter, join } from "node:path";

export type CliFound = { found: true; argv: string[]; from: "setting" | "path" | "workspace"; env?: Record<string, string> };
export type CliMissing = {
  found: false;
  /** One plain sentence: what was looked for and where. */
  message: string;
  /** A fix the extension can run: build the workspace's agent (a flatnet clone without a build). */
  fix?: { kind: "build"; folder: string };
};

export interface CliEnvironment {
  /** The `flatnet.cli` value when set anywhere, undefined for the default. */
  setting: readonly string[] | undefined;
  path: string | undefined;
  workspaceFolders: readonly string[];
  isExecutable(path: string): boolean;
  exists(path: string): boolean;
  /** The runtime that runs JavaScript: `node` when on PATH, else the editor's own (Electron as Node). */
  execPath: string;
  runsAsNode: boolean;
}

const WORKSPACE_BUILD = join("apps", "agent", "dist", "main.js");
const WORKSPACE_PACKAGE = join("apps", "agent", "package.json");

/** The first executable `name` in PATH, as a shell finds it; undefined when none. */
export function whichOnPath(name: string, path: string | undefined, isExecutable: (path: string) => boolean, separator = delimiter): string | undefined {
  return (path ?? "").split(separator).filter((dir) => dir !== "").map((dir) => join(dir, name)).find((candidate) => isExecutable(candidate));
}

export function findCli(env: CliEnvironment): CliFound | CliMissing {
  if (env.setting !== undefined) {
    const [file] = env.setting;
    if (file && (file.includes("/") ? env.isExecutable(file) : whichOnPath(file, env.path, env.isExecutable))) return { found: true, argv: [...env.setting], from: "setting" };
    return { found: false, message: `flatnet.cli is ${JSON.stringify(env.setting)}, but "${file}" is not an executable file${file?.includes("/") ? "" : " on PATH"}.` };
  }
  const onPath = whichOnPath("flatnet", env.path, env.isExecutable);
  if (onPath) return { found: true, argv: [onPath], from: "path" };
  for (const folder of env.workspaceFolders) {
    const main = join(folder, WORKSPACE_BUILD);
    if (env.exists(main)) {
      const node = whichOnPath("node", env.path, env.isExecutable);
      if (node) return { found: true, argv: [node, main], from: "workspace" };
      return { found: true, argv: [env.execPath, main], from: "workspace", ...(env.runsAsNode ? {} : { env: { ELECTRON_RUN_AS_NODE: "1" } }) };
    }
  }
  const clone = env.workspaceFolders.find((folder) => env.exists(join(folder, WORKSPACE_PACKAGE)));
  if (clone) {
    return { found: false, message: `The flatnet command is not on PATH and this flatnet clone is not built (no ${join(clone, WORKSPACE_BUILD)}).`, fix: { kind: "build", folder: clone } };
  }
  return { found: false, message: "The flatnet command is not on PATH and no workspace folder is a flatnet clone. Install it (npm link in apps/agent of a clone) or set flatnet.cli." };
}

/** A lab is probed inside its network namespaces (`ip netns exec`): that needs root. */
export function labNeedsRoot(uid: number | undefined): string | undefined {
  return uid === undefined || uid === 0 ? undefined : "Verify on the lab needs root: the probes run inside the lab's network namespaces (ip netns exec).";
}

/** One POSIX shell line for a terminal: plain words stay as they are, anything else is single-quoted. */
export function shellLine(argv: readonly string[]): string {
  return argv.map((arg) => (/^[\w./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`)).join(" ");
}
