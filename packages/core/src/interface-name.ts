import { err, ok, type Result } from "./errors.ts";

/**
 * The one rule for a name that reaches a kernel (bridge, veth, VXLAN, underlay, CNI_IFNAME): a letter or digit, then
 * up to 14 of `[A-Za-z0-9_.-]` (IFNAMSIZ is 16 with the NUL). Stricter than the kernel's dev_valid_name(): iproute2's
 * batch syntax reads `#` as a comment and `"`, `'`, `\` as quoting, so such a name would change the line it is on.
 */
export const INTERFACE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** The rule in words, for messages. */
export const INTERFACE_NAME_RULE = 'an interface name is 1-15 characters: a letter or digit, then letters, digits, "_", "." or "-"';

/**
 * Checks an interface name against INTERFACE_NAME_PATTERN.
 * @example safeParseInterfaceName("eth0#") // { success: false, error: { code: "ERR_INVALID_INTERFACE_NAME", ... } }
 */
export function safeParseInterfaceName(value: string): Result<string> {
  if (INTERFACE_NAME_PATTERN.test(value)) return ok(value);
  return err({ code: "ERR_INVALID_INTERFACE_NAME", message: `interface name ${JSON.stringify(value)} is refused: ${INTERFACE_NAME_RULE}` });
}
