import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OffsetIndex } from "./offset-index.ts";

describe("OffsetIndex", () => {
  it.each([
    { size: 64, used: [], cursor: -1, lo: 0, hi: 63, expected: 0 },
    { size: 64, used: [0, 1, 2], cursor: -1, lo: 0, hi: 63, expected: 3 },
    { size: 64, used: [5], cursor: 4, lo: 0, hi: 63, expected: 6 },
    { size: 64, used: [], cursor: 63, lo: 2, hi: 63, expected: 2 },
    { size: 64, used: [2, 3], cursor: 63, lo: 2, hi: 63, expected: 4 },
    { size: 70, used: Array.from({ length: 68 }, (_, i) => i + 2).filter((i) => i !== 40), cursor: 50, lo: 2, hi: 69, expected: 40 },
    { size: 70, used: Array.from({ length: 68 }, (_, i) => i + 2), cursor: 10, lo: 2, hi: 69, expected: -1 },
    { size: 33, used: Array.from({ length: 32 }, (_, i) => i), cursor: 0, lo: 0, hi: 32, expected: 32 },
    { size: 1, used: [], cursor: 0, lo: 0, hi: 0, expected: 0 },
    { size: 1, used: [0], cursor: 0, lo: 0, hi: 0, expected: -1 },
    { size: 2 ** 21, used: [100, 101, 2 ** 21 - 1], cursor: 99, lo: 0, hi: 2 ** 21 - 1, expected: 102 },
    { size: 2 ** 21, used: [2 ** 21 - 1, 0, 1], cursor: 2 ** 21 - 2, lo: 0, hi: 2 ** 21 - 1, expected: 2 },
    { size: 2 ** 25, used: [100, 101], cursor: 99, lo: 0, hi: 2 ** 25 - 1, expected: 102 },
    { size: 2 ** 25, used: [2 ** 25 - 1], cursor: 2 ** 25 - 2, lo: 0, hi: 2 ** 25 - 1, expected: 0 },
  ])("size $size cursor $cursor in $lo..$hi -> $expected", ({ size, used, cursor, lo, hi, expected }) => {
    const index = new OffsetIndex<string>(size);
    for (const offset of used) index.set(offset, "x");
    expect(index.nextFree(cursor, lo, hi)).toBe(expected);
    expect(index.used).toBe(used.length);
    index.set(used[0] ?? 0, "again"); // replacing an owner does not count twice
    expect(index.used).toBe(Math.max(used.length, 1));
    expect(index.get(used[0] ?? 0)).toBe("again");
    expect(index.delete(used[0] ?? 0)).toBe(true);
    expect(index.delete(used[0] ?? 0)).toBe(false);
    expect(index.used).toBe(Math.max(used.length, 1) - 1);
  });

  it("agrees with a naive model (property, bitmap and sparse)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 31, 32, 33, 100),
        fc.array(fc.tuple(fc.boolean(), fc.nat()), { maxLength: 200 }),
        fc.nat(),
        (size, ops, rawCursor) => {
          const model = new Set<number>();
          const index = new OffsetIndex<number>(size);
          for (const [add, raw] of ops) {
            const offset = raw % size;
            if (add) {
              model.add(offset);
              index.set(offset, offset);
            } else {
              expect(index.delete(offset)).toBe(model.delete(offset));
            }
          }
          const cursor = rawCursor % size;
          let expected = -1;
          for (let step = 1; step <= size; step++) {
            const candidate = (cursor + step) % size;
            if (!model.has(candidate)) {
              expected = candidate;
              break;
            }
          }
          expect(index.nextFree(cursor, 0, size - 1)).toBe(expected);
          expect(index.used).toBe(model.size);
        },
      ),
    );
  });
});
