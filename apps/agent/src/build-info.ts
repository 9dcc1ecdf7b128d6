import { execFileSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import agentPackage from "../package.json" with { type: "json" };

/** What a flatnet binary is: its version, the commit it was built from when known, and the runtime it runs on. */
export interface BuildInfo {
  version: string;
  commit: string | null;
  runtime: string;
  platform: string;
}

let cached: BuildInfo | undefined;

/** This process's build info; the commit comes from FLATNET_COMMIT (images) or the git checkout the code runs from. */
export function buildInfo(): BuildInfo {
  cached ??= {
    version: agentPackage.version,
    commit: process.env.FLATNET_COMMIT || gitCommit(),
    runtime: `node ${process.version}`,
    platform: `${process.platform}/${process.arch}`,
  };
  return cached;
}

function gitCommit(): string | null {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    return execFileSync("git", ["-C", here, "rev-parse", "--short=12", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 2_000 }).trim() || null;
  } catch {
    return null; // not a checkout (an image, a tarball) or no git
  }
}
