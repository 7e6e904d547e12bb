/**
 * Slowloris on HTTP (issue 10, "Hostile clients"): request headers dribbled a byte at a time
 * are cut off by the server's headers timeout (server-kit's HTTP_SERVER_TIMEOUTS: 10 s, checked
 * every second) instead of Node's defaults (~90 s).
 */
import { connect } from 'node:net';
import { HTTP_SERVER_TIMEOUTS } from '@nsq-ts/server-kit';
import { startNsqd } from '@nsq-ts/test-utils';
import { describe, expect, it } from 'vitest';

const BOUND_MS = HTTP_SERVER_TIMEOUTS.headersTimeout + 2 * HTTP_SERVER_TIMEOUTS.connectionsCheckingInterval;

describe('HTTP slowloris', () => {
  it('dribbled request headers are cut off within the headers timeout', async () => {
    const d = await startNsqd({ logLevel: 'fatal' });
    try {
      const [host, port] = d.httpAddress.split(':') as [string, string];
      const socket = connect({ host, port: Number(port) });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
      const start = Date.now();
      const request = `GET /ping HTTP/1.1\r\nHost: x\r\n${'X-Pad: y\r\n'.repeat(10_000)}\r\n`;
      let sent = 0;
      const dribble = setInterval(() => {
        if (!socket.destroyed && sent < request.length) socket.write(request[sent++] as string);
      }, 200);
      const end = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), BOUND_MS + 5_000))]);
      clearInterval(dribble);
      socket.destroy();
      expect(end).toBeGreaterThan(0);
      expect(end - start).toBeLessThanOrEqual(BOUND_MS);
    } finally {
      await d.close();
    }
  }, 200_000);
});
