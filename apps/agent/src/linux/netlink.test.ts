import { describe, expect, it } from "vitest";
import { constants } from "node:os";
import { classifyErrno, createNetlinkPodOps, ipBytes } from "./netlink.ts";

describe("ipBytes", () => {
  it.each([
    ["10.244.1.5", 2, "0af40105"],
    ["0.0.0.0", 2, "00000000"],
    ["255.255.255.255", 2, "ffffffff"],
    ["fd00:77::1", 10, "fd000077000000000000000000000001"],
    ["::", 10, "00000000000000000000000000000000"],
    ["::1", 10, "00000000000000000000000000000001"],
    ["fe80::", 10, "fe800000000000000000000000000000"],
    ["1:2:3:4:5:6:7:8", 10, "00010002000300040005000600070008"],
  ])("%s", (ip, family, hex) => expect(ipBytes(ip)).toEqual({ family, bytes: Buffer.from(hex, "hex") }));

  it.each(["10.0.0", "10.0.0.256", "1.2.3.4.5", "a.b.c.d", "1:2:3:4:5:6:7", "1::2::3", "1:2:3:4:5:6:7:8:9", "fd00::g", "1:2:3:4::5:6:7:8"])("refuses %s", (ip) => {
    expect(() => ipBytes(ip)).toThrow(JSON.stringify(ip));
  });
});

describe("createNetlinkPodOps", () => {
  it("is undefined under Node (bun:ffi is the worker's; the plugin elsewhere uses iproute2)", async () => {
    expect(await createNetlinkPodOps()).toBeUndefined();
  });
});

describe("classifyErrno", () => {
  it.each([
    [constants.errno.ENODEV, "ENODEV"],
    [constants.errno.EEXIST, "EEXIST"],
    [constants.errno.ESRCH, "ESRCH"],
    [constants.errno.ENOENT, "ENOENT"],
    [constants.errno.EPERM, "EPERM"],
    [constants.errno.EBUSY, "ERR_KERNEL_COMMAND"],
    [0, "ERR_KERNEL_COMMAND"],
  ])("errno %i is %s", (errno, code) => expect(classifyErrno(errno)).toBe(code));
});
