import { FlatnetError } from "../errors.ts";
import { ipBits, toInteger } from "../ip/address.ts";
import { type Cidr, formatCidr } from "./cidr.ts";

/** The most subnets `splitCidr` returns as an array; use `iterateSubnets` beyond it. */
export const SPLIT_LIMIT = 65_536;

function checkSubnetPrefix(cidr: Cidr, prefix: number): void {
  const bits = ipBits(cidr.family);
  if (!Number.isInteger(prefix) || prefix < cidr.prefix || prefix > bits) {
    throw new FlatnetError(
      "ERR_OUT_OF_RANGE",
      `cannot split ${formatCidr(cidr)} into /${prefix}; the subnet prefix must be ${cidr.prefix}-${bits}`,
      { details: { cidr: formatCidr(cidr), prefix } },
    );
  }
}

/** The number of `/prefix` subnets in `cidr` (2^(prefix - cidr.prefix)); throws `ERR_OUT_OF_RANGE` on a shorter prefix. */
export function subnetCount(cidr: Cidr, prefix: number): bigint {
  checkSubnetPrefix(cidr, prefix);
  return 1n << BigInt(prefix - cidr.prefix);
}

/**
 * The `index`-th `/prefix` subnet of `cidr` (0-based); throws `ERR_OUT_OF_RANGE` when there is no such subnet.
 * @example
 * formatCidr(nthSubnet(parseCidr("10.244.0.0/16"), 24, 3)) // "10.244.3.0/24"
 */
export function nthSubnet(cidr: Cidr, prefix: number, index: bigint | number): Cidr {
  const count = subnetCount(cidr, prefix);
  const i = toInteger(index, "index");
  if (i < 0n || i >= count) {
    throw new FlatnetError("ERR_OUT_OF_RANGE", `${formatCidr(cidr)} has ${count} /${prefix} subnets; index ${i} is outside 0-${count - 1n}`, {
      details: { cidr: formatCidr(cidr), prefix, index: i.toString() },
    });
  }
  return { family: cidr.family, network: cidr.network + (i << BigInt(ipBits(cidr.family) - prefix)), prefix };
}

/** Yields every `/prefix` subnet of `cidr` in address order, lazily. */
export function* iterateSubnets(cidr: Cidr, prefix: number): Generator<Cidr, void, undefined> {
  const count = subnetCount(cidr, prefix);
  const step = 1n << BigInt(ipBits(cidr.family) - prefix);
  let network = cidr.network;
  for (let i = 0n; i < count; i++, network += step) yield { family: cidr.family, network, prefix };
}

/**
 * Splits `cidr` into all of its `/prefix` subnets; throws `ERR_TOO_LARGE` past `SPLIT_LIMIT` subnets.
 * @example
 * splitCidr(parseCidr("10.0.0.0/23"), 24).map(formatCidr) // ["10.0.0.0/24", "10.0.1.0/24"]
 */
export function splitCidr(cidr: Cidr, prefix: number): Cidr[] {
  const count = subnetCount(cidr, prefix);
  if (count > BigInt(SPLIT_LIMIT)) {
    throw new FlatnetError(
      "ERR_TOO_LARGE",
      `splitting ${formatCidr(cidr)} into /${prefix} gives ${count} subnets; splitCidr returns at most ${SPLIT_LIMIT} (use iterateSubnets)`,
      { details: { cidr: formatCidr(cidr), prefix, count: count.toString() } },
    );
  }
  return [...iterateSubnets(cidr, prefix)];
}
