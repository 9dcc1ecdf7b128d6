import { describe, expect, it } from "vitest";
import { mountPointsUnder } from "./podman.ts";

const line = (id: number, point: string): string => `${id} 1 0:42 / ${point} rw,relatime shared:1 - overlay overlay rw`;

describe("mountPointsUnder", () => {
  it.each([
    ["nothing mounted there", [line(1, "/"), line(2, "/tmp/other/x")], []],
    ["the root itself is not under it", [line(1, "/tmp/lab/podman")], []],
    ["a sibling with the same prefix is not under it", [line(1, "/tmp/lab/podman2/x")], []],
    [
      "deepest first",
      [line(1, "/tmp/lab/podman/node1/root/overlay"), line(2, "/tmp/lab/podman/node1/root/overlay/abc/merged"), line(3, "/tmp/lab/podman/node1/run/shm")],
      ["/tmp/lab/podman/node1/root/overlay/abc/merged", "/tmp/lab/podman/node1/root/overlay", "/tmp/lab/podman/node1/run/shm"],
    ],
    ["octal escapes decoded (space, backslash)", [line(1, "/tmp/lab/podman/a\\040b\\134c")], ["/tmp/lab/podman/a b\\c"]],
  ])("%s", (_, lines, expected) => {
    expect(mountPointsUnder([...lines, ""].join("\n"), "/tmp/lab/podman")).toEqual(expected);
  });
});
