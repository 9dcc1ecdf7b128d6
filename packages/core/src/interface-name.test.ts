import { describe, expect, it } from "vitest";
import { clusterDescriptionSchema } from "./schema/cluster-description.ts";
import { safeParseInterfaceName } from "./interface-name.ts";

describe("safeParseInterfaceName", () => {
  it.each(["eth0", "fn-br0", "a", "vxlan.1", "en_p0s3", "0", "abcdefghijklmno"])("accepts %j", (name) => {
    expect(safeParseInterfaceName(name)).toEqual({ success: true, data: name });
  });

  // Each of these passed the old rule (/^[^\s/:]{1,15}$/) except the too-long, empty, "/" and whitespace rows.
  it.each(["eth0#", 'br"0', "br0\\", "br'0", "br0;x", "-eth0", ".", "..", ".x", "_x", "", "abcdefghijklmnop", "a/b", "a b", "a\tb", "a:b", "é"])(
    "refuses %j naming the value and the rule",
    (name) => {
      expect(safeParseInterfaceName(name)).toEqual({
        success: false,
        error: { code: "ERR_INVALID_INTERFACE_NAME", message: `interface name ${JSON.stringify(name)} is refused: an interface name is 1-15 characters: a letter or digit, then letters, digits, "_", "." or "-"` },
      });
    },
  );

  it.each([
    ["eth0#", false],
    ['br"0', false],
    ["br0\\", false],
    ["vx0", true],
  ])("a cluster description's vxlanDevice %j: accepted %j", (name, accepted) => {
    const parsed = clusterDescriptionSchema.safeParse({ clusterCidrs: ["10.244.0.0/16"], vxlanDevice: name, nodes: [{ name: "n", underlayIps: ["172.31.0.11/24"] }] });
    expect(parsed.success).toBe(accepted);
  });
});
