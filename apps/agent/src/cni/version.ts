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

/**
 * The version a runtime runs a conflist at, as libcni >= 1.2 picks it (libcni/conf.go NetworkConfFromBytes): the
 * highest of `cniVersions` and `cniVersion` not above `highest` (the spec version the runtime implements); a runtime
 * whose libcni predates `cniVersions` (1.1.x) reads `cniVersion` alone.
 */
export function negotiateCniVersion(list: { cniVersion?: string; cniVersions?: readonly string[] }, highest: string = LATEST_CNI_VERSION): string {
  const candidates = [...(list.cniVersions ?? []), ...(list.cniVersion === undefined ? [] : [list.cniVersion])];
  const usable = candidates.filter((v) => compareVersions(v, highest) <= 0).sort(compareVersions);
  const picked = list.cniVersions === undefined ? list.cniVersion : (usable.at(-1) ?? list.cniVersion);
  if (picked === undefined) throw new Error(`conflist has neither cniVersion nor cniVersions`);
  return picked;
}
