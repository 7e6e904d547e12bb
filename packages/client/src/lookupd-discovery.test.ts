/**
 * Discovery through real nsqlookupds: two lookupds, three nsqds registered with both (nsqd's own
 * V1 registration), a Producer pool publishing to all three and a Consumer that only knows the
 * lookupds' HTTP addresses.
 */
import { eventually, startLookupd, startNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { stringCodec } from './codecs.js';
import { Consumer } from './consumer.js';
import { Producer } from './producer.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('Consumer discovery through real nsqlookupds', () => {
  it('finds every nsqd registered with either lookupd and consumes from all of them', async () => {
    const lookupds = [
      await startLookupd({ broadcastAddress: '127.0.0.1' }),
      await startLookupd({ broadcastAddress: '127.0.0.1' }),
    ];
    for (const l of lookupds) cleanups.push(() => l.close());
    const nsqds = [];
    for (let i = 0; i < 3; i++) {
      const d = await startNsqd({
        broadcastAddress: '127.0.0.1',
        lookupdTcpAddresses: lookupds.map((l) => l.tcpAddress),
      });
      cleanups.push(() => d.close());
      nsqds.push(d);
    }
    // Each nsqd publishes its own messages so every node must be found.
    for (const [i, d] of nsqds.entries()) {
      const producer = new Producer<string>({ nsqdAddress: d.tcpAddress, codec: stringCodec });
      await producer.connect();
      await producer.publishMany(
        'events',
        Array.from({ length: 10 }, (_, k) => `n${i}-${k}`),
      );
      await producer.close();
    }
    await eventually(async () => {
      for (const l of lookupds) {
        const res = await fetch(`http://${l.httpAddress}/lookup?topic=events`);
        expect(((await res.json()) as { producers: unknown[] }).producers).toHaveLength(3);
      }
    });
    const received = new Set<string>();
    const consumer = new Consumer<string>({
      topic: 'events',
      channel: 'worker',
      lookupdHttpAddresses: lookupds.map((l) => l.httpAddress),
      lookupdPollIntervalMs: 200,
      maxInFlight: 10,
      codec: stringCodec,
      handler: (msg) => {
        received.add(msg.body);
      },
    });
    cleanups.push(() => consumer.close());
    await consumer.connect();
    await eventually(() => expect(received.size).toBe(30), { timeoutMs: 10_000 });
  });
});

describe('Consumer discovery through an nsqlookupd that closes reads (--http-auth-token, --http-auth-reads)', () => {
  it('sends lookupdAuthToken as a Bearer token; without it, connect() fails with the 401 and the consumer stops', async () => {
    const TOKEN = 'consumer-lookupd-token-77aa';
    const l = await startLookupd({ broadcastAddress: '127.0.0.1', httpAuthTokens: [TOKEN], httpAuthReads: true });
    cleanups.push(() => l.close());
    const d = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses: [l.tcpAddress] });
    cleanups.push(() => d.close());
    const producer = new Producer<string>({ nsqdAddress: d.tcpAddress, codec: stringCodec });
    await producer.connect();
    await producer.publishMany('events', ['a', 'b', 'c']);
    await producer.close();
    await eventually(() => expect(l.lookupd.db.findProducers('topic', 'events', '')).toHaveLength(1));

    function consumer(lookupdAuthToken?: string) {
      const received: string[] = [];
      const errors: Error[] = [];
      const c = new Consumer<string>({
        topic: 'events',
        channel: 'worker',
        lookupdHttpAddresses: [l.httpAddress],
        lookupdPollIntervalMs: 200,
        codec: stringCodec,
        handler: (msg) => {
          received.push(msg.body);
        },
        ...(lookupdAuthToken === undefined ? {} : { lookupdAuthToken }),
      });
      c.on('error', (err) => errors.push(err));
      cleanups.push(() => c.close());
      return { c, received, errors };
    }

    const refused = consumer();
    // No lookupd gave an answer: connect() fails, naming the lookupd, and nothing keeps polling.
    await expect(refused.c.connect()).rejects.toThrow(
      `GET http://${l.httpAddress}/lookup?topic=events: HTTP 401 UNAUTHORIZED (no bearer token sent)`,
    );
    expect(refused.errors[0]?.message).toContain('HTTP 401');
    expect(refused.received).toEqual([]);
    await expect(refused.c.connect()).rejects.toThrow('HTTP 401');

    const allowed = consumer(TOKEN);
    await allowed.c.connect();
    await eventually(() => expect(allowed.received.sort()).toEqual(['a', 'b', 'c']));
    expect(allowed.errors).toEqual([]);
    for (const err of [...refused.errors, ...allowed.errors]) expect(err.message).not.toContain(TOKEN);
  });
});
