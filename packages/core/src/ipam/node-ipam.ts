import { type CoreError, coreError, err, ok, type Result } from "../errors.ts";
import { type Cidr, formatCidr, safeParseCidr } from "../cidr/cidr.ts";
import { formatIpv4Value, formatIpv6Value, ipBits, type IpFamily, safeParseIp } from "../ip/address.ts";
import { OffsetIndex } from "./offset-index.ts";
import { replayEvents } from "./replay.ts";

/** Configuration of a node's pod IPAM: the node's pod CIDRs, at most one per family. */
export interface NodeIpamConfig {
  podCidrs: string[];
}

/** Identifies a pod attachment, as CNI does: the container id and the interface name inside it. */
export interface PodKey {
  containerId: string;
  ifName: string;
}

/** One address of a pod: what a CNI result needs. */
export interface PodIp {
  family: IpFamily;
  /** The pod's address, e.g. `10.244.1.5`. */
  address: string;
  /** The prefix length of the pod CIDR (the address is `address/prefix` on the pod's interface). */
  prefix: number;
  /** The gateway: the first usable address of the pod CIDR (`.1`). */
  gateway: string;
  podCidr: string;
}

/** The addresses of one attachment, one per configured family, with the sequence number of this allocation. */
export interface PodAllocation extends PodKey {
  /** Increases with every allocation on this node; a release carrying another seq is stale. */
  seq: number;
  ips: PodIp[];
}

/** A change to the node IPAM, for a journal: replaying events with `apply` rebuilds the same state. */
export type NodeIpamEvent =
  | { type: "allocate"; seq: number; containerId: string; ifName: string; ips: string[] }
  | { type: "release"; seq: number; containerId: string; ifName: string; ips: string[] };

/**
 * The outcome of a mutating call: the attachment concerned and the change made (`event` is `undefined` when nothing changed).
 * Returned objects are shared with the IPAM's state: treat them as read-only (serialise or copy before changing them).
 */
export interface NodeIpamChange {
  allocation: PodAllocation | undefined;
  event: NodeIpamEvent | undefined;
}

/** Usage of one pod CIDR. */
export interface NodePoolUsage {
  podCidr: string;
  family: IpFamily;
  gateway: string;
  rangeStart: string;
  rangeEnd: string;
  capacity: number;
  used: number;
  free: number;
}

/** The JSON form of a node IPAM (`toJSON` / `fromJSON`). */
export interface NodeIpamState {
  version: 1;
  podCidrs: string[];
  nextSeq: number;
  /** Per pod CIDR: the last address handed out (the next-fit cursor), or null. */
  lastReserved: (string | null)[];
  allocations: { containerId: string; ifName: string; seq: number; ips: string[] }[];
}

/** The largest offset an IPv6 pool hands out: a /64 is searched in its first 2^53 - 1 addresses. */
export const MAX_POOL_OFFSET = Number.MAX_SAFE_INTEGER - 1;

interface Pool {
  readonly cidr: Cidr;
  readonly text: string;
  readonly family: IpFamily;
  readonly networkNumber: number;
  readonly gateway: string;
  readonly lo: number;
  readonly hi: number;
  readonly owners: OffsetIndex<Attachment>;
  cursor: number;
}

interface Attachment {
  readonly offsets: number[];
  readonly addresses: string[];
  readonly allocation: PodAllocation;
  /** The next attachment of the same container (another interface). */
  next: Attachment | undefined;
}

/** Attachments by container id, then interface name: no key concatenation (and re-hashing) per call. */
class AttachmentTable {
  private readonly byContainer = new Map<string, Attachment>();
  size = 0;

  get(containerId: string, ifName: string): Attachment | undefined {
    for (let a = this.byContainer.get(containerId); a; a = a.next) if (a.allocation.ifName === ifName) return a;
    return undefined;
  }

  add(attachment: Attachment): void {
    attachment.next = this.byContainer.get(attachment.allocation.containerId);
    this.byContainer.set(attachment.allocation.containerId, attachment);
    this.size++;
  }

  remove(attachment: Attachment): void {
    const containerId = attachment.allocation.containerId;
    const head = this.byContainer.get(containerId);
    if (head === attachment) {
      if (attachment.next) this.byContainer.set(containerId, attachment.next);
      else this.byContainer.delete(containerId);
    } else {
      let a = head;
      while (a && a.next !== attachment) a = a.next;
      if (!a) return;
      a.next = attachment.next;
    }
    attachment.next = undefined;
    this.size--;
  }

  values(): Attachment[] {
    const all: Attachment[] = [];
    for (let a of this.byContainer.values()) for (; a; a = a.next!) all.push(a);
    return all;
  }
}

function addressAt(pool: Pool, offset: number): string {
  return pool.family === "IPv4" ? formatIpv4Value(pool.networkNumber + offset) : formatIpv6Value(pool.cidr.network + BigInt(offset));
}

function keyOf(containerId: string, ifName: string): string {
  return `${containerId}\u0000${ifName}`;
}

function checkKey(key: PodKey | undefined): CoreError | undefined {
  if (!key || typeof key !== "object") return coreError("ERR_INVALID_CONFIG", "a pod attachment needs { containerId, ifName }");
  if (typeof key.containerId !== "string" || key.containerId.length === 0) {
    return coreError("ERR_INVALID_CONFIG", `container id ${JSON.stringify(key.containerId)} is invalid; it must be a non-empty string`, { containerId: key.containerId });
  }
  if (typeof key.ifName !== "string" || key.ifName.length === 0) {
    return coreError("ERR_INVALID_CONFIG", `interface name ${JSON.stringify(key.ifName)} is invalid; it must be a non-empty string`, { ifName: key.ifName });
  }
  return undefined;
}

function describeKey(key: PodKey): string {
  return `container ${JSON.stringify(key.containerId)} interface ${JSON.stringify(key.ifName)}`;
}

/**
 * Hands out pod IPs from a node's pod CIDRs (host-local semantics, done better): idempotent by (containerId, ifName),
 * one IP per family atomically, network/gateway/broadcast reserved, next-fit so a freed IP is not reused at once,
 * sequence numbers that make stale releases harmless, GC against the live attachments. Pure and synchronous:
 * every mutating call returns the event it caused, for the caller's journal; `replay` rebuilds from those events.
 * @example
 * const ipam = unwrap(NodeIpam.create({ podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"] }));
 * const { allocation, event } = unwrap(ipam.allocate({ containerId: "abc", ifName: "eth0" }));
 * // allocation.ips[0] = { family: "IPv4", address: "10.244.1.2", prefix: 24, gateway: "10.244.1.1", podCidr: "10.244.1.0/24" }
 */
export class NodeIpam {
  private readonly pools: Pool[];
  private readonly attachments = new AttachmentTable();
  private nextSeq = 1;

  private constructor(pools: Pool[]) {
    this.pools = pools;
  }

  /** Validates the pod CIDRs (at most one per family, at least 2 host bits) and builds an empty IPAM. */
  static create(config: NodeIpamConfig): Result<NodeIpam> {
    if (!config || !Array.isArray(config.podCidrs) || config.podCidrs.length === 0) {
      return err(coreError("ERR_INVALID_CONFIG", "node IPAM needs at least one pod CIDR; podCidrs is empty"));
    }
    const pools: Pool[] = [];
    for (const text of config.podCidrs) {
      const parsed = safeParseCidr(text);
      if (!parsed.success) return err(coreError(parsed.error.code, `pod CIDR: ${parsed.error.message}`, parsed.error.details, parsed.error));
      const cidr = parsed.data;
      const bits = ipBits(cidr.family);
      const other = pools.find((pool) => pool.family === cidr.family);
      if (other) {
        return err(coreError("ERR_INVALID_CONFIG", `pod CIDR ${JSON.stringify(text)} is a second ${cidr.family} pod CIDR besides ${JSON.stringify(other.text)}; a node has at most one per family`, { cidr: text, other: other.text }));
      }
      if (cidr.prefix > bits - 2) {
        return err(coreError("ERR_INVALID_CONFIG", `pod CIDR ${JSON.stringify(text)} is too small to allocate from; ${cidr.family} pod CIDRs need a prefix of at most /${bits - 2}`, { cidr: text }));
      }
      const hostBits = bits - cidr.prefix;
      const size = hostBits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** hostBits;
      // host-local: the IPv4 broadcast address is never handed out; IPv6 has no broadcast.
      const hi = cidr.family === "IPv4" ? size - 2 : Math.min(size - 1, MAX_POOL_OFFSET);
      const pool: Pool = {
        cidr,
        text: formatCidr(cidr),
        family: cidr.family,
        networkNumber: cidr.family === "IPv4" ? Number(cidr.network) : 0,
        gateway: "",
        lo: 2,
        hi,
        owners: new OffsetIndex<Attachment>(hi + 1),
        cursor: 1,
      };
      pools.push({ ...pool, gateway: addressAt(pool, 1) });
    }
    return ok(new NodeIpam(pools));
  }

  /** Rebuilds an IPAM from `toJSON` output; fails on a malformed or self-conflicting state. */
  static fromJSON(state: NodeIpamState): Result<NodeIpam> {
    if (state === null || typeof state !== "object" || state.version !== 1 || !Array.isArray(state.allocations)) {
      return err(coreError("ERR_INVALID_STATE", "node IPAM state is not a version 1 state object ({ version: 1, podCidrs, nextSeq, lastReserved, allocations })"));
    }
    const created = NodeIpam.create({ podCidrs: state.podCidrs });
    if (!created.success) return created;
    const ipam = created.data;
    for (const entry of state.allocations) {
      const reserved = ipam.reserve(entry);
      if (!reserved.success) return err(coreError("ERR_INVALID_STATE", `node IPAM state is inconsistent: ${reserved.error.message}`, reserved.error.details, reserved.error));
    }
    if (Number.isSafeInteger(state.nextSeq) && state.nextSeq > ipam.nextSeq) ipam.nextSeq = state.nextSeq;
    const cursors = Array.isArray(state.lastReserved) ? state.lastReserved : [];
    ipam.pools.forEach((pool, i) => {
      const text = cursors[i];
      const offset = typeof text === "string" ? ipam.offsetIn(pool, text) : undefined;
      pool.cursor = offset ?? 1;
    });
    return ok(ipam);
  }

  /** Rebuilds an IPAM by replaying journal events in order on an empty one. */
  static replay(config: NodeIpamConfig, events: Iterable<NodeIpamEvent>): Result<NodeIpam> {
    return replayEvents(NodeIpam.create(config), events, "replay");
  }

  /** The JSON form: pod CIDRs, sequence counter, cursors and every allocation (in seq order). */
  toJSON(): NodeIpamState {
    return {
      version: 1,
      podCidrs: this.pools.map((pool) => pool.text),
      nextSeq: this.nextSeq,
      lastReserved: this.pools.map((pool) => (pool.cursor >= pool.lo ? addressAt(pool, pool.cursor) : null)),
      allocations: this.allocations().map(({ containerId, ifName, seq, ips }) => ({ containerId, ifName, seq, ips: ips.map((ip) => ip.address) })),
    };
  }

  /** Every current allocation, in seq order. */
  allocations(): PodAllocation[] {
    return [...this.attachments.values()].map((attachment) => attachment.allocation).sort((a, b) => a.seq - b.seq);
  }

  /** The allocation of an attachment, or `undefined`. */
  get(key: PodKey): PodAllocation | undefined {
    return this.attachments.get(key.containerId, key.ifName)?.allocation;
  }

  /** The allocation holding the address `ip` (any spelling), or `undefined`. */
  holderOf(ip: string): PodAllocation | undefined {
    for (const pool of this.pools) {
      const offset = this.offsetIn(pool, ip);
      if (offset !== undefined) return pool.owners.get(offset)?.allocation;
    }
    return undefined;
  }

  /** Used and free addresses per pod CIDR (capacity excludes network, gateway and IPv4 broadcast). */
  usage(): NodePoolUsage[] {
    return this.pools.map((pool) => ({
      podCidr: pool.text,
      family: pool.family,
      gateway: pool.gateway,
      rangeStart: addressAt(pool, pool.lo),
      rangeEnd: addressAt(pool, pool.hi),
      capacity: pool.hi - pool.lo + 1,
      used: pool.owners.used,
      free: pool.hi - pool.lo + 1 - pool.owners.used,
    }));
  }

  /**
   * Gives an attachment one IP per pod CIDR, next-fit after the last one handed out. Idempotent: an attachment
   * that has IPs gets them back with no event. All families or none (`ERR_POOL_EXHAUSTED` names the full pod CIDR).
   */
  allocate(key: PodKey): Result<NodeIpamChange> {
    const invalid = checkKey(key);
    if (invalid) return err(invalid);
    const existing = this.attachments.get(key.containerId, key.ifName);
    if (existing) return ok({ allocation: existing.allocation, event: undefined });
    const pools = this.pools;
    const offsets: number[] = new Array(pools.length);
    for (let i = 0; i < pools.length; i++) {
      const pool = pools[i]!;
      const offset = pool.owners.used > pool.hi - pool.lo ? -1 : pool.owners.nextFree(pool.cursor, pool.lo, pool.hi);
      if (offset === -1) return err(this.exhausted(pool, key));
      offsets[i] = offset;
    }
    return ok(this.commit(key, offsets, this.nextSeq++));
  }

  /**
   * Gives an attachment the given addresses (restoring from a journal or a CNI `ips` request), with `seq` when known.
   * Idempotent for the same addresses; `ERR_CONFLICT` names the holder when an address is taken or the attachment holds others.
   */
  reserve(request: PodKey & { ips: string[]; seq?: number }): Result<NodeIpamChange> {
    const invalid = checkKey(request);
    if (invalid) return err(invalid);
    const { ips, seq } = request;
    if (!Array.isArray(ips) || ips.length === 0) {
      return err(coreError("ERR_INVALID_CONFIG", `reserve for ${describeKey(request)} needs at least one IP address`));
    }
    if (seq !== undefined && (!Number.isSafeInteger(seq) || seq < 1)) {
      return err(coreError("ERR_INVALID_CONFIG", `seq ${JSON.stringify(seq)} for ${describeKey(request)} is invalid; it must be a positive integer`));
    }
    const offsets: number[] = new Array(this.pools.length).fill(-1);
    for (const text of ips) {
      const parsed = safeParseIp(text);
      if (!parsed.success) return err(parsed.error);
      const index = this.pools.findIndex((pool) => pool.family === parsed.data.family);
      const pool = this.pools[index];
      const relative = pool ? parsed.data.value - pool.cidr.network : -1n;
      if (!pool || relative < 0n || relative >= 1n << BigInt(ipBits(pool.family) - pool.cidr.prefix)) {
        return err(coreError("ERR_OUT_OF_RANGE", `IP ${JSON.stringify(text)} for ${describeKey(request)} is not inside the node's pod CIDRs (${this.pools.map((p) => p.text).join(", ")})`, { ip: text }));
      }
      const offset = relative > BigInt(pool.hi) ? Number.MAX_SAFE_INTEGER : Number(relative);
      if (offset < pool.lo || offset > pool.hi) {
        return err(
          coreError("ERR_OUT_OF_RANGE", `IP ${JSON.stringify(text)} for ${describeKey(request)} is not allocatable: ${pool.text} hands out ${addressAt(pool, pool.lo)}-${addressAt(pool, pool.hi)} (network, gateway ${pool.gateway}${pool.family === "IPv4" ? " and broadcast" : ""} are reserved)`, {
            ip: text,
            podCidr: pool.text,
          }),
        );
      }
      if (offsets[index] !== -1) {
        return err(coreError("ERR_CONFLICT", `reserve for ${describeKey(request)} names two ${pool.family} addresses; an attachment has at most one per family`, { ips }));
      }
      offsets[index] = offset;
    }
    const existing = this.attachments.get(request.containerId, request.ifName);
    if (existing) {
      if (existing.offsets.every((offset, i) => offset === offsets[i])) return ok({ allocation: existing.allocation, event: undefined });
      return err(
        coreError("ERR_CONFLICT", `${describeKey(request)} already holds ${existing.allocation.ips.map((ip) => ip.address).join(", ")} (seq ${existing.allocation.seq}); release it before reserving ${ips.join(", ")}`, {
          containerId: request.containerId,
          ifName: request.ifName,
          seq: existing.allocation.seq,
        }),
      );
    }
    for (let i = 0; i < this.pools.length; i++) {
      const holder = offsets[i] === -1 ? undefined : this.pools[i]!.owners.get(offsets[i]!);
      if (holder) {
        const address = addressAt(this.pools[i]!, offsets[i]!);
        return err(
          coreError("ERR_CONFLICT", `IP ${address} is already held by ${describeKey(holder.allocation)} (seq ${holder.allocation.seq}); ${describeKey(request)} cannot reserve it`, {
            ip: address,
            holder: { containerId: holder.allocation.containerId, ifName: holder.allocation.ifName, seq: holder.allocation.seq },
          }),
        );
      }
    }
    const assigned = seq ?? this.nextSeq;
    if (assigned >= this.nextSeq) this.nextSeq = assigned + 1;
    return ok(this.commit(request, offsets, assigned));
  }

  /**
   * Frees an attachment's IPs. Idempotent (CNI DEL): an unknown attachment changes nothing. With `seq`, a release
   * that does not match the current allocation's seq is stale (`ERR_STALE_RELEASE`) and frees nothing.
   */
  release(request: PodKey & { seq?: number }): Result<NodeIpamChange> {
    const invalid = checkKey(request);
    if (invalid) return err(invalid);
    const attachment = this.attachments.get(request.containerId, request.ifName);
    if (!attachment) return ok({ allocation: undefined, event: undefined });
    return this.free(attachment, request.seq);
  }

  /** Frees the whole attachment holding `ip` (all its families); stale with a non-matching `seq`; no-op when nobody holds it. */
  releaseIp(ip: string, seq?: number): Result<NodeIpamChange> {
    const parsed = safeParseIp(ip);
    if (!parsed.success) return err(parsed.error);
    const allocation = this.holderOf(ip);
    if (!allocation) return ok({ allocation: undefined, event: undefined });
    return this.free(this.attachments.get(allocation.containerId, allocation.ifName)!, seq);
  }

  /** Frees every attachment not in `live` (CNI GC's valid attachments); returns what it freed and the events. */
  gc(live: Iterable<PodKey>): { released: PodAllocation[]; events: NodeIpamEvent[] } {
    const keep = new Set<string>();
    for (const key of live) keep.add(keyOf(key.containerId, key.ifName));
    const released: PodAllocation[] = [];
    const events: NodeIpamEvent[] = [];
    for (const attachment of [...this.attachments.values()].sort((a, b) => a.allocation.seq - b.allocation.seq)) {
      if (keep.has(keyOf(attachment.allocation.containerId, attachment.allocation.ifName))) continue;
      const change = this.free(attachment, undefined);
      if (change.success && change.data.event) {
        released.push(attachment.allocation);
        events.push(change.data.event);
      }
    }
    return { released, events };
  }

  /** Applies a journal event (as returned by a mutating call); a stale release is refused like `release`. */
  apply(event: NodeIpamEvent): Result<NodeIpamChange> {
    switch (event?.type) {
      case "allocate":
        return this.reserve(event);
      case "release":
        return this.release(event);
      default:
        return err(coreError("ERR_INVALID_STATE", `node IPAM event type ${JSON.stringify((event as { type?: unknown })?.type)} is unknown; expected allocate or release`));
    }
  }

  private commit(key: PodKey, offsets: number[], seq: number): NodeIpamChange {
    const ips: PodIp[] = [];
    const addresses: string[] = [];
    const attachment: Attachment = { offsets, addresses, allocation: { containerId: key.containerId, ifName: key.ifName, seq, ips }, next: undefined };
    for (let i = 0; i < this.pools.length; i++) {
      const offset = offsets[i]!;
      if (offset === -1) continue;
      const pool = this.pools[i]!;
      pool.owners.set(offset, attachment);
      pool.cursor = offset;
      const address = addressAt(pool, offset);
      addresses.push(address);
      ips.push({ family: pool.family, address, prefix: pool.cidr.prefix, gateway: pool.gateway, podCidr: pool.text });
    }
    this.attachments.add(attachment);
    return { allocation: attachment.allocation, event: { type: "allocate", seq, containerId: key.containerId, ifName: key.ifName, ips: addresses } };
  }

  private free(attachment: Attachment, seq: number | undefined): Result<NodeIpamChange> {
    const allocation = attachment.allocation;
    if (seq !== undefined && seq !== allocation.seq) {
      return err(
        coreError(
          "ERR_STALE_RELEASE",
          `release of ${describeKey(allocation)} carries seq ${seq}, but its current allocation (${allocation.ips.map((ip) => ip.address).join(", ")}) is seq ${allocation.seq}; nothing was released`,
          { containerId: allocation.containerId, ifName: allocation.ifName, seq, currentSeq: allocation.seq },
        ),
      );
    }
    for (let i = 0; i < this.pools.length; i++) if (attachment.offsets[i] !== -1) this.pools[i]!.owners.delete(attachment.offsets[i]!);
    this.attachments.remove(attachment);
    return ok({
      allocation,
      event: { type: "release", seq: allocation.seq, containerId: allocation.containerId, ifName: allocation.ifName, ips: attachment.addresses },
    });
  }

  private offsetIn(pool: Pool, text: string): number | undefined {
    const parsed = safeParseIp(text, pool.family);
    if (!parsed.success) return undefined;
    const relative = parsed.data.value - pool.cidr.network;
    return relative >= 0n && relative <= BigInt(pool.hi) ? Number(relative) : undefined;
  }

  private exhausted(pool: Pool, key: PodKey): CoreError {
    return coreError(
      "ERR_POOL_EXHAUSTED",
      `no free IP in pod CIDR ${pool.text} for ${describeKey(key)}: all ${pool.hi - pool.lo + 1} addresses ${addressAt(pool, pool.lo)}-${addressAt(pool, pool.hi)} are in use; nothing was allocated`,
      { podCidr: pool.text, containerId: key.containerId, ifName: key.ifName },
    );
  }
}
