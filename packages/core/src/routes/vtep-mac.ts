import { coreError, err, ok, type Result } from "../errors.ts";

const MAC_PATTERN = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/**
 * A deterministic VTEP MAC for a node name: locally administered, unicast, 46 hashed bits.
 * Every node computes the same MAC for a peer that published none, and a recreated device keeps its MAC.
 * @example vtepMacFor("node-1") // "..:..:..:..:..:.." with the first octet's low bits 0b10
 */
export function vtepMacFor(nodeName: string): string {
  const [high, low] = hash64(nodeName);
  // IEEE 802: first octet bit 1 set = locally administered, bit 0 clear = unicast.
  const first = ((high >>> 24) & 0xfc) | 0x02;
  return `${HEX[first]}:${HEX[(high >>> 16) & 0xff]}:${HEX[low >>> 24]}:${HEX[(low >>> 16) & 0xff]}:${HEX[(low >>> 8) & 0xff]}:${HEX[low & 0xff]}`;
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/**
 * Parses a colon-separated MAC (`aa:bb:cc:dd:ee:ff`, any case) into its lowercase canonical form.
 * @example safeParseMac("0A:58:0A:F4:01:01") // { success: true, data: "0a:58:0a:f4:01:01" }
 */
export function safeParseMac(value: string): Result<string> {
  if (typeof value !== "string" || !MAC_PATTERN.test(value)) {
    return err(coreError("ERR_INVALID_MAC", `MAC ${JSON.stringify(value)} is not six colon-separated hex octets (aa:bb:cc:dd:ee:ff)`, { value }));
  }
  return ok(value.toLowerCase());
}

/** Parses a MAC that must be usable as a VTEP address: well-formed, unicast and not all zeros. */
export function safeParseVtepMac(value: string): Result<string> {
  const parsed = safeParseMac(value);
  if (!parsed.success) return parsed;
  const mac = parsed.data;
  if ((Number.parseInt(mac.slice(0, 2), 16) & 0x01) !== 0) {
    return err(coreError("ERR_INVALID_MAC", `MAC "${mac}" is multicast (first octet's low bit set); a VTEP MAC must be unicast`, { value }));
  }
  if (mac === "00:00:00:00:00:00") {
    return err(coreError("ERR_INVALID_MAC", `MAC "${mac}" is all zeros; a VTEP MAC must be a real unicast address`, { value }));
  }
  return ok(mac);
}

// cyrb53's mixing (public domain, bryc): two 32-bit multiplicative lanes with a final avalanche; portable integer math.
function hash64(text: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h2 >>> 0, h1 >>> 0];
}
