import { type CoreError, coreError, err, ok, type Result } from "../errors.ts";
import { type Cidr, cidrContains, cidrsOverlap, formatCidr, hostMask, safeParseCidr } from "../cidr/cidr.ts";
import { ipBits, type IpFamily } from "../ip/address.ts";
import { OffsetIndex } from "./offset-index.ts";
import { replayEvents } from "./replay.ts";

/** Configuration of the cluster IPAM: the cluster CIDRs and the per-node mask of each family. */
export interface ClusterIpamConfig {
  /** Cluster CIDRs, any mix of families; a node gets one pod CIDR per family, from the first pool of that family with room. */
  clusterCidrs: string[];
  /** Prefix length of an IPv4 node pod CIDR. Default: 24. */
  nodeMaskIPv4?: number;
  /** Prefix length of an IPv6 node pod CIDR. Default: 64. */
  nodeMaskIPv6?: number;
}

/** The pod CIDRs of one node, one per family, in the order of the families in `clusterCidrs`. */
export interface NodePodCidrs {
  node: string;
  podCidrs: string[];
}

/**
 * A change to the cluster IPAM, for a journal: replaying the events with `apply` rebuilds the same state.
 * `allocate` moves the pool's next-fit cursor, `occupy` does not.
 */
export type ClusterIpamEvent =
  | { type: "allocate"; node: string; podCidrs: string[] }
  | { type: "occupy"; node: string; podCidrs: string[] }
  | { type: "release"; node: string; podCidrs: string[] };

/** The outcome of a mutating call: the node's pod CIDRs after it, and the change made (`undefined` when nothing changed). */
export interface ClusterIpamChange extends NodePodCidrs {
  event: ClusterIpamEvent | undefined;
}

/** Usage of one cluster CIDR. */
export interface ClusterPoolUsage {
  pool: string;
  family: IpFamily;
  nodeMask: number;
  capacity: number;
  used: number;
  free: number;
}

/** The JSON form of the cluster IPAM (`toJSON` / `fromJSON`). */
export interface ClusterIpamState {
  version: 1;
  config: { clusterCidrs: string[]; nodeMaskIPv4: number; nodeMaskIPv6: number };
  /** Per pool (same order as clusterCidrs): the index of the last allocated node CIDR, -1 when none. */
  cursors: number[];
  nodes: NodePodCidrs[];
}

/** The most node CIDRs one occupied CIDR may span. */
export const MAX_OCCUPY_BLOCKS = 1 << 20;

/** The most node CIDRs one cluster CIDR may be split into (2^32). */
export const MAX_NODE_CIDRS_PER_POOL = 2 ** 32;

interface Pool {
  readonly cidr: Cidr;
  readonly text: string;
  readonly nodeMask: number;
  readonly shift: bigint;
  readonly capacity: number;
  readonly owners: OffsetIndex<string>;
  cursor: number;
}

/** A range of node-CIDR indexes of one pool that a node holds (one node CIDR, or a larger or smaller occupied CIDR). */
interface Holding {
  readonly pool: Pool;
  readonly begin: number;
  readonly end: number;
  readonly text: string;
}

const DEFAULT_MASK: Record<IpFamily, number> = { IPv4: 24, IPv6: 64 };

/**
 * Splits cluster CIDRs into per-node pod CIDRs, like Kubernetes' node IPAM range allocator, with dual-stack
 * allocation that is atomic (all families or none), conflicts that name both nodes, and a JSON/journal form.
 * Mutating calls return the event they caused, so a caller can append it to a durable log.
 * @example
 * const ipam = unwrap(ClusterIpam.create({ clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/48"] }));
 * ipam.allocate("node-a"); // { success: true, data: { node: "node-a", podCidrs: ["10.244.0.0/24", "fd00:10:244::/64"], event: {...} } }
 */
export class ClusterIpam {
  private readonly pools: Pool[];
  private readonly families: IpFamily[];
  private readonly masks: Record<IpFamily, number>;
  private readonly holdings = new Map<string, Holding[]>();

  private constructor(pools: Pool[], masks: Record<IpFamily, number>) {
    this.pools = pools;
    this.masks = masks;
    this.families = [...new Set(pools.map((pool) => pool.cidr.family))];
  }

  /** Validates the configuration and builds an empty allocator. */
  static create(config: ClusterIpamConfig): Result<ClusterIpam> {
    const masks: Record<IpFamily, number> = {
      IPv4: config.nodeMaskIPv4 ?? DEFAULT_MASK.IPv4,
      IPv6: config.nodeMaskIPv6 ?? DEFAULT_MASK.IPv6,
    };
    if (!Array.isArray(config.clusterCidrs) || config.clusterCidrs.length === 0) {
      return err(coreError("ERR_INVALID_CONFIG", "cluster IPAM needs at least one cluster CIDR; clusterCidrs is empty"));
    }
    for (const family of ["IPv4", "IPv6"] as const) {
      const mask = masks[family];
      const bits = ipBits(family);
      if (!Number.isInteger(mask) || mask < 0 || mask > bits - 2) {
        return err(
          coreError("ERR_INVALID_CONFIG", `node mask ${mask} for ${family} is invalid; it must be an integer 0-${bits - 2} (a pod CIDR needs at least 2 host bits)`, {
            family,
            nodeMask: mask,
          }),
        );
      }
    }
    const pools: Pool[] = [];
    for (const text of config.clusterCidrs) {
      const parsed = safeParseCidr(text);
      if (!parsed.success) return err(coreError(parsed.error.code, `cluster CIDR: ${parsed.error.message}`, parsed.error.details, parsed.error));
      const cidr = parsed.data;
      const nodeMask = masks[cidr.family];
      if (nodeMask < cidr.prefix) {
        return err(
          coreError("ERR_INVALID_CONFIG", `cluster CIDR ${JSON.stringify(text)} is smaller than one /${nodeMask} node CIDR; use a ${cidr.family} node mask of at least ${cidr.prefix}`, {
            cidr: text,
            nodeMask,
          }),
        );
      }
      const capacity = 2 ** (nodeMask - cidr.prefix);
      if (capacity > MAX_NODE_CIDRS_PER_POOL) {
        return err(
          coreError("ERR_TOO_LARGE", `cluster CIDR ${JSON.stringify(text)} split into /${nodeMask} gives 2^${nodeMask - cidr.prefix} node CIDRs; at most 2^32 are supported (use a longer cluster prefix)`, {
            cidr: text,
            nodeMask,
          }),
        );
      }
      const clash = pools.find((pool) => cidrsOverlap(pool.cidr, cidr));
      if (clash) {
        return err(coreError("ERR_OVERLAP", `cluster CIDR ${JSON.stringify(text)} overlaps cluster CIDR ${JSON.stringify(clash.text)}; cluster CIDRs must be disjoint`, { cidr: text, other: clash.text }));
      }
      pools.push({
        cidr,
        text: formatCidr(cidr),
        nodeMask,
        shift: BigInt(ipBits(cidr.family) - nodeMask),
        capacity,
        owners: new OffsetIndex<string>(capacity),
        cursor: -1,
      });
    }
    return ok(new ClusterIpam(pools, masks));
  }

  /** Rebuilds an allocator from `toJSON` output; fails when the state is malformed or self-conflicting. */
  static fromJSON(state: ClusterIpamState): Result<ClusterIpam> {
    if (state === null || typeof state !== "object" || state.version !== 1 || !state.config || !Array.isArray(state.nodes)) {
      return err(coreError("ERR_INVALID_STATE", "cluster IPAM state is not a version 1 state object ({ version: 1, config, cursors, nodes })"));
    }
    const created = ClusterIpam.create(state.config);
    if (!created.success) return created;
    const ipam = created.data;
    for (const entry of state.nodes) {
      const occupied = ipam.occupy(entry?.node, entry?.podCidrs);
      if (!occupied.success) return err(coreError("ERR_INVALID_STATE", `cluster IPAM state is inconsistent: ${occupied.error.message}`, occupied.error.details, occupied.error));
    }
    const cursors = Array.isArray(state.cursors) ? state.cursors : [];
    ipam.pools.forEach((pool, i) => {
      const cursor = cursors[i];
      pool.cursor = Number.isInteger(cursor) && cursor! >= -1 && cursor! < pool.capacity ? cursor! : -1;
    });
    return ok(ipam);
  }

  /** Rebuilds an allocator by replaying journal events in order on an empty one. */
  static replay(config: ClusterIpamConfig, events: Iterable<ClusterIpamEvent>): Result<ClusterIpam> {
    return replayEvents(ClusterIpam.create(config), events);
  }

  /** The JSON form: configuration, cursors and every node's pod CIDRs (sorted by node name). */
  toJSON(): ClusterIpamState {
    return {
      version: 1,
      config: { clusterCidrs: this.pools.map((pool) => pool.text), nodeMaskIPv4: this.masks.IPv4, nodeMaskIPv6: this.masks.IPv6 },
      cursors: this.pools.map((pool) => pool.cursor),
      nodes: this.nodes(),
    };
  }

  /** Every node and its pod CIDRs, sorted by node name. */
  nodes(): NodePodCidrs[] {
    return [...this.holdings.keys()].sort().map((node) => ({ node, podCidrs: this.podCidrsOf(node) ?? [] }));
  }

  /** The pod CIDRs a node holds, or `undefined` when it holds none. */
  podCidrsOf(node: string): string[] | undefined {
    return this.holdings.get(node)?.map((holding) => holding.text);
  }

  /** The node holding the node block that contains `cidr` (a CIDR as long as or longer than the node mask), or `undefined`. */
  ownerOf(cidr: Cidr): string | undefined {
    for (const pool of this.pools) {
      if (!cidrContains(pool.cidr, cidr)) continue;
      return pool.owners.get(Number((cidr.network - pool.cidr.network) >> pool.shift));
    }
    return undefined;
  }

  /** Used and free node CIDRs per cluster CIDR. */
  usage(): ClusterPoolUsage[] {
    return this.pools.map((pool) => ({
      pool: pool.text,
      family: pool.cidr.family,
      nodeMask: pool.nodeMask,
      capacity: pool.capacity,
      used: pool.owners.used,
      free: pool.capacity - pool.owners.used,
    }));
  }

  /**
   * Gives `node` one pod CIDR per configured family (idempotent: a node that has them gets them back and no event).
   * All families or none: when one family is exhausted nothing is taken (`ERR_POOL_EXHAUSTED` names the pools).
   * Next-fit from the last allocation, so a released CIDR is not handed out again at once.
   */
  allocate(node: string): Result<ClusterIpamChange> {
    const nameError = checkNodeName(node);
    if (nameError) return err(nameError);
    const held = this.holdings.get(node);
    const missing = held ? this.families.filter((family) => !held.some((holding) => holding.pool.cidr.family === family)) : this.families;
    if (held && missing.length === 0) return ok({ node, podCidrs: held.map((holding) => holding.text), event: undefined });
    const picks: { pool: Pool; index: number }[] = [];
    for (const family of missing) {
      let pick: { pool: Pool; index: number } | undefined;
      for (const pool of this.pools) {
        if (pool.cidr.family !== family || pool.owners.used === pool.capacity) continue;
        const index = pool.owners.nextFree(pool.cursor, 0, pool.capacity - 1);
        if (index !== -1) {
          pick = { pool, index };
          break;
        }
      }
      if (!pick) return err(this.exhausted(node, family));
      picks.push(pick);
    }
    const added: Holding[] = picks.map(({ pool, index }) => {
      pool.owners.set(index, node);
      pool.cursor = index;
      return { pool, begin: index, end: index, text: this.blockText(pool, index) };
    });
    // a new node's picks are already in family order
    const holdings = held ? this.orderHoldings([...held, ...added]) : added;
    this.holdings.set(node, holdings);
    const podCidrs = added.map((holding) => holding.text);
    return ok({
      node,
      podCidrs: held ? holdings.map((holding) => holding.text) : podCidrs,
      event: { type: "allocate", node, podCidrs: held ? podCidrs : podCidrs.slice() },
    });
  }

  /**
   * Records pod CIDRs a node already has (e.g. read back from Node objects after a restart). Idempotent.
   * A CIDR may be a node block or any CIDR inside a cluster CIDR (it then holds every block it touches).
   * Fails without changing anything on a bad or out-of-pool CIDR, or on one held by another node (`ERR_CONFLICT` names both).
   */
  occupy(node: string, podCidrs: string[]): Result<ClusterIpamChange> {
    const nameError = checkNodeName(node);
    if (nameError) return err(nameError);
    if (!Array.isArray(podCidrs)) return err(coreError("ERR_INVALID_CIDR", `pod CIDRs of node ${JSON.stringify(node)} must be a list of CIDR strings`));
    const held = this.holdings.get(node) ?? [];
    const added: Holding[] = [];
    for (const text of podCidrs) {
      const parsed = safeParseCidr(text);
      if (!parsed.success) {
        return err(coreError(parsed.error.code, `pod CIDR of node ${JSON.stringify(node)}: ${parsed.error.message}`, { node, ...parsed.error.details }, parsed.error));
      }
      const cidr = parsed.data;
      const canonical = formatCidr(cidr);
      if (held.some((holding) => holding.text === canonical) || added.some((holding) => holding.text === canonical)) continue;
      const pool = this.pools.find((candidate) => cidrContains(candidate.cidr, cidr));
      if (!pool) {
        return err(
          coreError("ERR_OUT_OF_RANGE", `pod CIDR ${JSON.stringify(text)} of node ${JSON.stringify(node)} is not inside any cluster CIDR (${this.pools.map((p) => p.text).join(", ")})`, {
            node,
            cidr: text,
          }),
        );
      }
      const begin = Number((cidr.network - pool.cidr.network) >> pool.shift);
      const end = Number(((cidr.network | hostMask(cidr.family, cidr.prefix)) - pool.cidr.network) >> pool.shift);
      if (end - begin >= MAX_OCCUPY_BLOCKS) {
        return err(
          coreError("ERR_TOO_LARGE", `pod CIDR ${JSON.stringify(canonical)} of node ${JSON.stringify(node)} spans ${end - begin + 1} /${pool.nodeMask} node CIDRs; occupy takes at most ${MAX_OCCUPY_BLOCKS}`, {
            node,
            cidr: canonical,
          }),
        );
      }
      for (const other of [...held, ...added]) {
        if (other.pool === pool && other.begin <= end && begin <= other.end) {
          return err(coreError("ERR_CONFLICT", `pod CIDR ${JSON.stringify(canonical)} of node ${JSON.stringify(node)} overlaps its own pod CIDR ${JSON.stringify(other.text)}`, { node, cidr: canonical, other: other.text }));
        }
      }
      for (let index = begin; index <= end; index++) {
        const owner = pool.owners.get(index);
        if (owner !== undefined && owner !== node) {
          const theirs = this.holdings.get(owner)?.find((holding) => holding.pool === pool && holding.begin <= index && index <= holding.end);
          return err(
            coreError("ERR_CONFLICT", `pod CIDR ${JSON.stringify(canonical)} of node ${JSON.stringify(node)} conflicts with ${JSON.stringify(theirs?.text)} held by node ${JSON.stringify(owner)}`, {
              node,
              cidr: canonical,
              owner,
              ownerCidr: theirs?.text,
            }),
          );
        }
      }
      added.push({ pool, begin, end, text: canonical });
    }
    if (added.length === 0) return ok({ node, podCidrs: held.map((holding) => holding.text), event: undefined });
    for (const holding of added) for (let index = holding.begin; index <= holding.end; index++) holding.pool.owners.set(index, node);
    const holdings = this.orderHoldings([...held, ...added]);
    this.holdings.set(node, holdings);
    return ok({ node, podCidrs: holdings.map((holding) => holding.text), event: { type: "occupy", node, podCidrs: added.map((holding) => holding.text) } });
  }

  /** Frees every pod CIDR of `node` (idempotent: an unknown node changes nothing and yields no event). */
  release(node: string): Result<ClusterIpamChange> {
    const held = this.holdings.get(node);
    if (!held) return ok({ node, podCidrs: [], event: undefined });
    for (const holding of held) for (let index = holding.begin; index <= holding.end; index++) holding.pool.owners.delete(index);
    this.holdings.delete(node);
    return ok({ node, podCidrs: [], event: { type: "release", node, podCidrs: held.map((holding) => holding.text) } });
  }

  /** Applies a journal event (as returned by a mutating call). */
  apply(event: ClusterIpamEvent): Result<ClusterIpamChange> {
    switch (event?.type) {
      case "allocate": {
        const occupied = this.occupy(event.node, event.podCidrs);
        if (!occupied.success) return occupied;
        const allocated = new Set(event.podCidrs.map(canonicalOrSelf));
        for (const holding of this.holdings.get(event.node) ?? []) if (allocated.has(holding.text)) holding.pool.cursor = holding.end;
        return ok({ ...occupied.data, event });
      }
      case "occupy":
        return this.occupy(event.node, event.podCidrs);
      case "release": {
        const held = this.holdings.get(event.node)?.map((holding) => holding.text) ?? [];
        const wanted = Array.isArray(event.podCidrs) ? event.podCidrs.map(canonicalOrSelf) : [];
        if (held.length > 0 && wanted.some((text) => !held.includes(text))) {
          return err(coreError("ERR_CONFLICT", `release of ${JSON.stringify(event.podCidrs)} for node ${JSON.stringify(event.node)} does not match its pod CIDRs ${JSON.stringify(held)}`, { node: event.node }));
        }
        return this.release(event.node);
      }
      default:
        return err(coreError("ERR_INVALID_STATE", `cluster IPAM event type ${JSON.stringify((event as { type?: unknown })?.type)} is unknown; expected allocate, occupy or release`));
    }
  }

  private blockText(pool: Pool, index: number): string {
    return formatCidr({ family: pool.cidr.family, network: pool.cidr.network + (BigInt(index) << pool.shift), prefix: pool.nodeMask });
  }

  private orderHoldings(holdings: Holding[]): Holding[] {
    const order = (holding: Holding) => this.families.indexOf(holding.pool.cidr.family) * this.pools.length + this.pools.indexOf(holding.pool);
    return holdings.sort((a, b) => order(a) - order(b) || a.begin - b.begin);
  }

  private exhausted(node: string, family: IpFamily): CoreError {
    const pools = this.pools.filter((pool) => pool.cidr.family === family);
    const names = pools.map((pool) => `${pool.text} (${pool.owners.used} of ${pool.capacity} /${pool.nodeMask} in use)`).join(", ");
    return coreError("ERR_POOL_EXHAUSTED", `no free ${family} node CIDR for node ${JSON.stringify(node)}: cluster CIDR ${names} is full; nothing was allocated`, {
      node,
      family,
      pools: pools.map((pool) => pool.text),
    });
  }
}

function checkNodeName(node: unknown): CoreError | undefined {
  if (typeof node === "string" && node.length > 0) return undefined;
  return coreError("ERR_INVALID_CONFIG", `node name ${JSON.stringify(node)} is invalid; it must be a non-empty string`, { node });
}

function canonicalOrSelf(text: string): string {
  const parsed = safeParseCidr(text);
  return parsed.success ? formatCidr(parsed.data) : text;
}
