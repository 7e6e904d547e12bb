/**
 * Slowloris on HTTP (issue 10, "Hostile clients"): request headers dribbled a byte at a time
 * must be cut off by the server. nsqd's HTTP server (server-kit / http-api) sets no
 * headersTimeout, so Node's defaults apply: 60 s for the headers, checked every 30 s — a
 * dribbling client holds a connection for up to ~90 s. Skipped until server-kit sets
 * `headersTimeout` (e.g. 10 s) and `connectionsCheckingInterval` (e.g. 1 s); set
 * NSQ_TS_HTTP_SLOWLORIS_MS to the expected bound (ms) to run it.
 */
import { connect } from 'node:net';
import { startNsqd } from '@nsq-ts/test-utils';
import { describe, expect, it } from 'vitest';

const BOUND_MS = Number(process.env.NSQ_TS_HTTP_SLOWLORIS_MS ?? 0);

describe('HTTP slowloris', () => {
  it.skipIf(BOUND_MS === 0)(
    'dribbled request headers are cut off within the headers timeout',
    async () => {
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
    },
    200_000,
  );
});
