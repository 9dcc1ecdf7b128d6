/** Pools up to this many offsets keep a bitmap for next-free search; larger ones scan the owner map. */
export const BITMAP_LIMIT = 1 << 24;
/** Pools up to this many offsets keep owners in a dense array (8 bytes a slot) instead of a map. */
export const DENSE_LIMIT = 1 << 20;

const FULL = 0xffff_ffff;

function lowestSetBit(word: number): number {
  return 31 - Math.clz32(word & -word);
}

/**
 * Owners of the offsets 0..size-1 of a pool, with a next-free search.
 * A bitmap (<= BITMAP_LIMIT offsets) skips 32 used offsets per step; beyond it the search scans the map,
 * which costs at most (used + 1) probes.
 */
export class OffsetIndex<T> {
  readonly size: number;
  private readonly owners: Map<number, T> | undefined;
  private readonly slots: (T | undefined)[] | undefined;
  private readonly words: Uint32Array | undefined;
  private count = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`invariant: offset index size ${size} is not a safe non-negative integer`);
    this.size = size;
    this.words = size <= BITMAP_LIMIT ? new Uint32Array(Math.ceil(size / 32)) : undefined;
    this.slots = size <= DENSE_LIMIT ? new Array<T | undefined>(size).fill(undefined) : undefined;
    this.owners = this.slots ? undefined : new Map<number, T>();
  }

  get used(): number {
    return this.count;
  }

  get(offset: number): T | undefined {
    return this.slots ? this.slots[offset] : this.owners!.get(offset);
  }

  has(offset: number): boolean {
    return this.get(offset) !== undefined;
  }

  /** Sets the owner of `offset` (`owner` must not be undefined). */
  set(offset: number, owner: T): void {
    if (this.slots) {
      if (this.slots[offset] === undefined) this.count++;
      this.slots[offset] = owner;
    } else {
      if (!this.owners!.has(offset)) this.count++;
      this.owners!.set(offset, owner);
    }
    if (this.words) this.words[offset >>> 5]! |= 1 << (offset & 31);
  }

  delete(offset: number): boolean {
    if (this.slots) {
      if (this.slots[offset] === undefined) return false;
      this.slots[offset] = undefined;
    } else if (!this.owners!.delete(offset)) {
      return false;
    }
    this.count--;
    if (this.words) this.words[offset >>> 5]! &= ~(1 << (offset & 31));
    return true;
  }

  /** The first free offset in from..to (inclusive), or -1. */
  firstFree(from: number, to: number): number {
    const words = this.words;
    if (!words) {
      for (let offset = from; offset <= to; offset++) if (!this.owners!.has(offset)) return offset;
      return -1;
    }
    let offset = from;
    while (offset <= to) {
      const index = offset >>> 5;
      const word = words[index]!;
      if (word !== FULL) {
        const free = ~word >>> (offset & 31);
        if (free !== 0) {
          const found = offset + lowestSetBit(free);
          return found <= to ? found : -1;
        }
      }
      offset = (index + 1) * 32;
    }
    return -1;
  }

  /** Next-fit: the first free offset after `cursor` in lo..hi, wrapping around to lo; -1 when lo..hi is full. */
  nextFree(cursor: number, lo: number, hi: number): number {
    const start = cursor < lo || cursor >= hi ? lo : cursor + 1;
    const found = this.firstFree(start, hi);
    if (found !== -1 || start === lo) return found;
    return this.firstFree(lo, start - 1);
  }
}
