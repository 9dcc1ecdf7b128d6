import { isIP } from "node:net";

/** Where the read-only metrics/health listener binds: `--metrics-address HOST:PORT`. */
export interface HostPort {
  /** An IP literal (IPv6 without brackets), or "localhost". */
  host: string;
  port: number;
}

export const METRICS_ADDRESS_RULE =
  'must be HOST:PORT with an IP address or "localhost" as host and a port from 1 to 65535 (e.g. 10.0.0.5:9471, 0.0.0.0:9471, [fd00::5]:9471)';

/**
 * Parses `HOST:PORT`: `10.0.0.5:9471`, `0.0.0.0:9471`, `[fd00::5]:9471`, and also an unbracketed IPv6 host
 * (`fd00::5:9471`): the port is mandatory, so the last colon always separates it. That keeps a manifest's
 * `$(HOST_IP):9471` right on IPv6-only nodes, where the downward API gives the address without brackets.
 * Returns the host and port, or a reason naming what is wrong.
 */
export function parseHostPort(text: string): HostPort | { error: string } {
  const value = text.trim();
  const colon = value.lastIndexOf(":");
  if (colon <= 0) return { error: `${METRICS_ADDRESS_RULE}; no ":PORT" or no host` };
  let host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (host.startsWith("[") !== host.endsWith("]")) return { error: `${METRICS_ADDRESS_RULE}; unbalanced brackets in "${host}"` };
  if (host.startsWith("[")) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) return { error: `${METRICS_ADDRESS_RULE}; "[${host}]" is not an IPv6 address` };
  } else if (host !== "localhost" && isIP(host) === 0) {
    return { error: `${METRICS_ADDRESS_RULE}; "${host}" is not an IP address` };
  }
  if (!/^\d{1,5}$/.test(portText)) return { error: `${METRICS_ADDRESS_RULE}; port "${portText}" is not a number` };
  const port = Number(portText);
  if (port < 1 || port > 65535) return { error: `${METRICS_ADDRESS_RULE}; port ${port} is out of range` };
  return { host, port };
}

/** How to print an address for humans and URLs: IPv6 in brackets. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
