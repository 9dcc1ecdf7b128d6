export {
  canonicalIp,
  formatIp,
  ipBits,
  ipFamilyOf,
  ipFromValue,
  isIp,
  IPV4_MAX,
  IPV6_MAX,
  maxIpValue,
  parseIp,
  safeParseIp,
  type IpAddress,
  type IpFamily,
} from "./address.ts";
export { addToIp, compareIp, ipEquals, isIpv4Mapped, mapIpv4ToIpv6, parseHostIp, sameHost, unmapIp } from "./ops.ts";
