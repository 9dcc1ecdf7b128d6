/** A recorded ClusterView (JSON file) shown as a cluster: for demos, screenshots and tests without a cluster. */
import { readFileSync, watchFile, unwatchFile } from "node:fs";
import { type ClusterView, clusterViewSchema } from "../model/cluster-view.ts";
import type { ClusterSource } from "./source.ts";

export function readFixture(path: string): ClusterView {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    return errorView(path, `fixture "${path}" cannot be read as JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = clusterViewSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return errorView(path, `fixture "${path}" is invalid at "${issue?.path.join(".") ?? ""}": ${issue?.message ?? "unknown"}`);
  }
  return { ...parsed.data, status: parsed.data.status ?? { state: "ready" } };
}

function errorView(path: string, message: string): ClusterView {
  return { id: `fixture:${path}`, name: path, source: "fixture", clusterCidrs: [], nodes: [], pods: [], status: { state: "error", message } };
}

export class FixtureSource implements ClusterSource {
  #view: ClusterView | undefined;

  constructor(private readonly path: string) {}

  view(): ClusterView | undefined {
    return this.#view;
  }

  start(onChange: () => void): void {
    const reload = () => {
      this.#view = readFixture(this.path);
      onChange();
    };
    reload();
    watchFile(this.path, { interval: 1000 }, reload);
  }

  dispose(): void {
    unwatchFile(this.path);
  }
}
