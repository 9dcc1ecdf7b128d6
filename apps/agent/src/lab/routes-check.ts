import { canonicalCidr } from "@flatnet/core";
import { run } from "./exec.ts";

// flatnet's routes carry this protocol number (docs/design.md, "Ownership in the kernel").
const FLATNET_ROUTE_PROTOCOL = "77";

/** Destinations of the routes flatnet programmed in a namespace (both families), canonical CIDR strings. */
export async function flatnetRouteDestinations(netns: string): Promise<string[]> {
  const read = async (family: "-4" | "-6"): Promise<string[]> => {
    const { stdout } = await run("ip", ["-n", netns, "-j", family, "route", "show", "proto", FLATNET_ROUTE_PROTOCOL], {
      allowFailure: true,
    });
    const routes = stdout.trim() === "" ? [] : (JSON.parse(stdout) as { dst: string }[]);
    return routes.map((route) => canonicalCidr(route.dst.includes("/") ? route.dst : `${route.dst}/${family === "-4" ? 32 : 128}`));
  };
  return [...(await read("-4")), ...(await read("-6"))];
}

/** The pod CIDRs of `expected` a node has no flatnet route to (empty = converged for that node). */
export async function missingRoutes(netns: string, expected: readonly string[]): Promise<string[]> {
  const present = new Set(await flatnetRouteDestinations(netns));
  return expected.map((cidr) => canonicalCidr(cidr)).filter((cidr) => !present.has(cidr));
}
