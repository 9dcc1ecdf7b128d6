import type { ClusterView } from "../model/cluster-view.ts";

/** Something that keeps one ClusterView up to date and says when it changed (a signal; read `view()`). */
export interface ClusterSource {
  view(): ClusterView | undefined;
  start(onChange: () => void): void;
  dispose(): void;
}
