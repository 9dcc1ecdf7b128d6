/**
 * The command line of one verification, from the cluster and the settings: a lab is named by its state
 * directory, a Kubernetes cluster by `--context` (and `--kubeconfig` when one file holds it). Pure, so the
 * arguments are unit-tested without VS Code.
 */
import { delimiter } from "node:path";
import type { ClusterView } from "../model/cluster-view.ts";

export interface ProbeCommand {
  argv: string[];
  /** Variables to set on top of the extension host's environment. */
  env: Record<string, string>;
}

/**
 * A lab appends `--state-dir <dir>`; a cluster appends `--context <name>` and `--kubeconfig <file>` when one
 * file is in use. Several files are merged by the CLI's loader from KUBECONFIG, as kubectl does, since
 * `--kubeconfig` takes one file. Arguments the user already put in the probe args are not repeated.
 */
export function buildProbeCommand(
  cli: readonly string[],
  args: readonly string[],
  target: Pick<ClusterView, "id" | "name" | "source">,
  kubeconfigs: readonly string[],
): ProbeCommand {
  if (target.source === "lab") return { argv: [...cli, ...args, "--state-dir", target.id.slice("lab:".length)], env: { FLATNET_CLUSTER_SOURCE: "lab" } };
  if (target.source !== "kubernetes") throw new Error(`cluster "${target.name}" is a ${target.source}: only a lab or a Kubernetes context can be verified`);
  const has = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  const argv = [...cli, ...args];
  const env: Record<string, string> = { FLATNET_CLUSTER_SOURCE: "kubernetes" };
  if (!has("--context")) argv.push("--context", target.name);
  if (!has("--kubeconfig")) {
    if (kubeconfigs.length === 1) argv.push("--kubeconfig", kubeconfigs[0]!);
    else if (kubeconfigs.length > 1) env.KUBECONFIG = kubeconfigs.join(delimiter);
  }
  return { argv, env };
}
