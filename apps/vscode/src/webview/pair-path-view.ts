/**
 * The path of one selected pair under the topology: its steps pod -> node -> underlay -> node -> pod and the reply
 * back, each with the packet and what that kernel does with it; the first broken hop is marked, its findings and
 * their fix text beside it. Drawn from the pure `PairPath` model (model/pair-path.ts).
 */
import type { PairPath, PathFinding, PathStep } from "../model/pair-path.ts";
import { button, h, icon } from "./dom.ts";
import type { TopologyActions } from "./topology.ts";

const ROLE_ICONS: Record<PathStep["role"], string> = { "src-pod": "symbol-field", "src-node": "server", underlay: "globe", "dst-node": "server", "dst-pod": "symbol-field" };

function findingItem(finding: PathFinding, actions: TopologyActions): HTMLElement {
  const text = finding.fix;
  const fix = text ? button({ class: "link fix", title: "Copy the fix (flatnet never runs it)" }, () => actions.copy(text), icon("wrench"), " fix: ", h("code", {}, text)) : null;
  return h("li", { class: "finding", "data-code": finding.code }, icon("lightbulb"), h("span", { class: "finding-message" }, ` ${finding.message}`), fix);
}

export function renderPairPath(path: PairPath, actions: TopologyActions): HTMLElement {
  const step = (s: PathStep, index: number) =>
    h(
      "li",
      { class: `hop ${s.status}${index === path.brokenAt ? " breaks" : ""}`, "data-role": s.role, "data-direction": s.direction, "aria-current": index === path.brokenAt ? "step" : undefined },
      h("span", { class: "hop-name" }, icon(index === path.brokenAt ? "error" : ROLE_ICONS[s.role]), ` ${s.name}`),
      s.packet ? h("span", { class: "ip" }, s.packet) : null,
      s.decision ? h("span", { class: "decision" }, s.decision) : null,
      index === path.brokenAt ? h("strong", { class: "breaks-here" }, "breaks here") : null,
      s.findings.length ? h("ul", { class: "findings" }, ...s.findings.map((f) => findingItem(f, actions))) : null,
    );
  const leg = (direction: PathStep["direction"]) => {
    const items = path.steps.flatMap((s, index) => (s.direction === direction ? [step(s, index)] : []));
    return items.length ? h("ol", { class: `path-leg ${direction}`, "aria-label": direction === "forward" ? "forward path" : "reply path" }, ...items) : null;
  };
  return h(
    "section",
    { class: "pair-path", "data-pair": path.pairId, "aria-label": `path of ${path.pairId}` },
    h("h2", {}, icon("debug-step-over"), ` ${path.pairId}`, h("span", { class: `badge state-${path.verdict}` }, path.verdict)),
    path.traced ? null : h("p", { class: "muted" }, "No hops: the agents' evidence was not gathered for this pair."),
    h("h3", {}, "forward"),
    leg("forward"),
    path.steps.some((s) => s.direction === "reply") ? h("h3", {}, "reply") : null,
    leg("reply"),
    path.unplaced.length ? h("ul", { class: "findings unplaced" }, ...path.unplaced.map((f) => findingItem(f, actions))) : null,
  );
}
