import type { Server } from 'node:net';
import { formatHostPort, parseHostPort } from '@nsq-ts/go-compat';

/** Binds `server` to `host:port` (port 0: any free one) and resolves with the bound `host:port`. */
export function listen(server: Server, address: string): Promise<string> {
  const at = parseHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(a !== null && typeof a === 'object' ? formatHostPort(a.address, a.port) : '');
    });
  });
}
