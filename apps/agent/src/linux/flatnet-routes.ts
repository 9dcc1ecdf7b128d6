import { canonicalCidr, FLATNET_ROUTE_PROTOCOL } from "@flatnet/core";
import { assertNetnsName, runCommand } from "./exec.ts";
import { withPrefix } from "./read.ts";

interface RouteJson {
  dst: string;
  metrics?: { mtu?: number }[];
}

// One family per run: `-4`/`-6` cannot appear inside a batch line. A namespace that cannot be read has no routes.
async function readFlatnetRoutes(netns: string, family: "-4" | "-6", tableAll: boolean): Promise<RouteJson[]> {
  assertNetnsName(netns);
  const table = tableAll ? ["table", "all"] : [];
  const result = await runCommand("ip", [family, "-n", netns, "-j", "route", "show", ...table, "proto", String(FLATNET_ROUTE_PROTOCOL)]);
  if (result.exitCode !== 0 || result.stdout.trim() === "") return [];
  return JSON.parse(result.stdout) as RouteJson[];
}

/** The pod CIDRs of `expected` a node has no flatnet route to in its main table (empty = converged for that node). */
export async function missingRoutes(netns: string, expected: readonly string[]): Promise<string[]> {
  const routes = [...(await readFlatnetRoutes(netns, "-4", false)), ...(await readFlatnetRoutes(netns, "-6", false))];
  const present = new Set(routes.map((route) => canonicalCidr(withPrefix(route.dst))));
  return expected.map((cidr) => canonicalCidr(cidr)).filter((cidr) => !present.has(cidr));
}

/** The MTUs set on flatnet's routes (`ip route ... proto 77 mtu N`), both families, every table. */
export async function readRouteMtus(netns: string): Promise<{ dst: string; mtu: number }[]> {
  const out: { dst: string; mtu: number }[] = [];
  for (const family of ["-4", "-6"] as const) {
    for (const r of await readFlatnetRoutes(netns, family, true)) {
      const mtu = r.metrics?.find((m) => m.mtu !== undefined)?.mtu;
      if (r.dst !== undefined && mtu !== undefined) out.push({ dst: r.dst, mtu });
    }
  }
  return out;
}
