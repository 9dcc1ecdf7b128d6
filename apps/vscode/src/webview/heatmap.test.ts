import { describe, expect, it } from "vitest";
import { moveCursor } from "./heatmap.ts";

describe("moveCursor", () => {
  it.each([
    ["the first arrow lands on the first cell", undefined, "ArrowDown", 3, { row: 0, col: 0 }],
    ["down", { row: 0, col: 1 }, "ArrowDown", 3, { row: 1, col: 1 }],
    ["right", { row: 0, col: 1 }, "ArrowRight", 3, { row: 0, col: 2 }],
    ["stops at the last column", { row: 0, col: 2 }, "ArrowRight", 3, { row: 0, col: 2 }],
    ["stops at the first row", { row: 0, col: 2 }, "ArrowUp", 3, { row: 0, col: 2 }],
    ["left", { row: 2, col: 2 }, "ArrowLeft", 3, { row: 2, col: 1 }],
    ["Home", { row: 2, col: 2 }, "Home", 3, { row: 2, col: 0 }],
    ["End", { row: 2, col: 0 }, "End", 3, { row: 2, col: 2 }],
    ["other keys are not for the cursor", { row: 1, col: 1 }, "a", 3, undefined],
    ["an empty matrix has no cursor", undefined, "ArrowDown", 0, undefined],
  ])("%s", (_, cursor, key, n, expected) => {
    expect(moveCursor(cursor, key, n)).toEqual(expected);
  });
});
