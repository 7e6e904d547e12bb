/** A parsed `host:port` (IPv6 hosts may be bracketed: `[::1]:4150`). */
export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port`; throws a RangeError for anything else, so bad config fails at construction. */
export function parseAddress(address: string): HostPort {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) throw new RangeError(`address "${address}" is not host:port`);
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const portText = address.slice(colon + 1);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port <= 0 || port > 65535) {
    throw new RangeError(`address "${address}" has an invalid port`);
  }
  return { host, port };
}
