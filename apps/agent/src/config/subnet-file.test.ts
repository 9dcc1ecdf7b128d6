import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseSubnetFile } from "../cni/netconf.ts";
import { SubnetFileWriter } from "./subnet-file.ts";

const dir = mkdtempSync(join(tmpdir(), "fnk-subnet-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("SubnetFileWriter", () => {
  it("writes what the CNI plugin parses, only on change, at most once per interval unless forced", () => {
    let clock = 0;
    const path = join(dir, "run", "subnet.json");
    const writer = new SubnetFileWriter(path, 1000, () => clock);
    let reads = 0;
    let content = { podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"], mtu: 1450 };
    const read = () => (reads++, content);
    expect(writer.update(read)).toBe(true);
    expect(parseSubnetFile(path, readFileSync(path, "utf8"))).toEqual(content);
    clock = 500;
    content = { ...content, mtu: 1500 };
    expect([writer.update(read), reads]).toEqual([false, 1]); // throttled: not even read
    clock = 1500;
    expect(writer.update(read)).toBe(true);
    expect(JSON.parse(readFileSync(path, "utf8")).mtu).toBe(1500);
    clock = 3000;
    expect(writer.update(read)).toBe(false); // unchanged: not rewritten
    expect(writer.update(read, true)).toBe(false);
    expect(writer.update(() => undefined, true)).toBe(false); // not known yet
  });
});
