import { CniCode, CniError } from "./errors.ts";

/** The CNI spec versions flatnet speaks; results are written in the version the config asks for. */
export const SUPPORTED_CNI_VERSIONS = ["0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_CNI_VERSIONS)[number];
export const LATEST_CNI_VERSION: CniVersion = "1.1.0";

export function isSupportedVersion(version: string): version is CniVersion {
  return (SUPPORTED_CNI_VERSIONS as readonly string[]).includes(version);
}

/** Throws CNI error 1 unless `version` is one flatnet supports. */
export function requireSupportedVersion(version: string): CniVersion {
  if (isSupportedVersion(version)) return version;
  throw new CniError(
    CniCode.IncompatibleVersion,
    `cniVersion ${JSON.stringify(version)} is not supported; flatnet supports ${SUPPORTED_CNI_VERSIONS.join(", ")}`,
  );
}

/** Semver-ish comparison of dotted numeric versions ("0.4.0" < "1.0.0" < "1.1.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
