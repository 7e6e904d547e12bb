/** Splits NSQ's `host:port` (also `:port` and `[::1]:port`) for net.Server.listen. */
export function parseHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw new Error(`address ${JSON.stringify(address)} is not host:port`);
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(portText);
  if (portText === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`address ${JSON.stringify(address)} has an invalid port`);
  }
  return { host: host === '' ? '::' : host, port };
}

/** `host:port`, with brackets around IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
