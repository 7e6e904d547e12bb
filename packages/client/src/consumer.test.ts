/**
 * Consumer against real in-process nsqds over TCP: handlers and async iteration, failures with
 * requeue and backoff, max attempts, touch, reconnects, graceful close and RDY distribution over
 * more connections than maxInFlight. Waits poll broker or consumer state with deadlines.
 */
import { eventually, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonCodec, msgpackCodec, stringCodec } from './codecs.js';
import { Consumer, type ConsumerOptions } from './consumer.js';
import type { Message } from './message.js';
import { Producer } from './producer.js';
import { channelCounts, clientRdys, uniqueTopic } from './testing/helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function nsqd(options: Parameters<typeof startNsqd>[0] = {}): Promise<TestNsqd> {
  const d = await startNsqd(options);
  cleanups.push(() => d.close());
  return d;
}

function track<C extends { close(): Promise<void> }>(c: C): C {
  cleanups.push(() => c.close());
  return c;
}

/** A tracked Consumer of string bodies on channel `ch` of `topic` on `ds`; `options` add to that. */
function consumer(
  ds: TestNsqd | readonly TestNsqd[],
  topic: string,
  options: Partial<ConsumerOptions<string>> = {},
): Consumer<string> {
  const nsqdAddresses = (Array.isArray(ds) ? ds : [ds]).map((d: TestNsqd) => d.tcpAddress);
  return track(new Consumer({ topic, channel: 'ch', nsqdAddresses, codec: stringCodec, ...options }));
}

async function publish(d: TestNsqd, topic: string, bodies: string[]): Promise<void> {
  const p = new Producer({ nsqdAddress: d.tcpAddress });
  await p.publishMany(topic, bodies);
  await p.close();
}

const range = (n: number, prefix = 'm'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Resolves after `ms`: simulated handler work, never used to wait for an effect. */
const work = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Consumer', () => {
  it('delivers with a handler and finishes messages when it resolves', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    await publish(d, topic, range(100));
    const seen = new Set<string>();
    const c = consumer(d, topic, { maxInFlight: 10 });
    c.on('message', (msg) => {
      expect(msg.attempts).toBe(1);
      expect(msg.id).toMatch(/^[0-9a-f]{16}$/);
      expect(Math.abs(msg.timestampMs - Date.now())).toBeLessThan(60_000);
      seen.add(msg.body);
    });
    await c.connect();
    await eventually(() => seen.size === 100);
    await eventually(() => channelCounts(d, topic, 'ch')?.inFlight === 0 && channelCounts(d, topic, 'ch')?.depth === 0);
    expect(c.stats().finished).toBe(100);
    expect(clientRdys(d)).toEqual([10]);
  });

  it('supports for await, with the loop body answering each message', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    await publish(d, topic, range(20));
    const c = consumer(d, topic, { maxInFlight: 5 });
    const got: string[] = [];
    for await (const msg of c) {
      got.push(msg.body);
      msg.finish();
      if (got.length === 20) break; // leaving the loop closes the consumer gracefully
    }
    expect(got.sort()).toEqual(range(20).sort());
    await eventually(() => channelCounts(d, topic, 'ch')?.inFlight === 0);
    expect(channelCounts(d, topic, 'ch')?.depth).toBe(0);
  });

  it('requeues when the handler throws and backs off: RDY 0, then a RDY 1 probe, then full RDY', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    const events: string[] = [];
    let calls = 0;
    const c = consumer(d, topic, {
      maxInFlight: 8,
      requeueDelayMs: 0,
      backoffMinDelayMs: 400,
      handler: (msg) => {
        calls++;
        if (msg.attempts === 1) throw new Error('downstream is down');
      },
    });
    const delays: number[] = [];
    c.on('backoff', ({ level, delayMs }) => {
      events.push(`backoff ${level}`);
      delays.push(delayMs);
    });
    c.on('resume', () => events.push('resume'));
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    await c.connect();
    await eventually(() => clientRdys(d)[0] === 8);
    await publish(d, topic, ['poison']);
    // The failure puts the connection at RDY 0 for the backoff delay…
    await eventually(() => events.includes('backoff 1'));
    await eventually(() => clientRdys(d)[0] === 0);
    expect(errors.map((e) => e.message)).toEqual(['downstream is down']);
    expect(delays[0]).toBeGreaterThanOrEqual(400); // backoffMinDelayMs is a minimum
    // …then the requeued message comes back through a RDY 1 probe, succeeds, and RDY is restored.
    await eventually(() => events.includes('resume'), { timeoutMs: 5_000 });
    await eventually(() => clientRdys(d)[0] === 8);
    expect(calls).toBe(2);
    expect(channelCounts(d, topic, 'ch')?.requeued).toBe(1);
    expect(c.stats().backoffLevel).toBe(0);
  });

  it('gives up after maxAttempts, calling the give-up hook once, and finishes the message', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    const attempts: number[] = [];
    const givenUp: Message<string>[] = [];
    const c = consumer(d, topic, {
      maxAttempts: 3,
      requeueDelayMs: 0,
      backoffMinDelayMs: 10,
      backoffMaxDelayMs: 20,
      handler: (msg) => {
        attempts.push(msg.attempts);
        throw new Error('always fails');
      },
      onGiveUp: (msg) => {
        givenUp.push(msg);
      },
    });
    await c.connect();
    await publish(d, topic, ['doomed']);
    await eventually(() => givenUp.length === 1);
    expect(givenUp[0]?.body).toBe('doomed');
    expect(givenUp[0]?.attempts).toBe(3);
    expect(attempts).toEqual([1, 2, 3]);
    await eventually(() => channelCounts(d, topic, 'ch')?.inFlight === 0);
    expect(channelCounts(d, topic, 'ch')).toMatchObject({ depth: 0, deferred: 0 });
    expect(c.stats().givenUp).toBe(1);
  });

  it('touch keeps a slow message alive past msg_timeout (automatic and manual)', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    await publish(d, topic, ['slow-auto', 'slow-manual']);
    const done: string[] = [];
    const c = consumer(d, topic, {
      maxInFlight: 2,
      msgTimeoutMs: 1_000,
      autoTouch: true,
      handler: async (msg) => {
        expect(msg.attempts).toBe(1);
        if (msg.body === 'slow-manual') {
          for (let i = 0; i < 5; i++) {
            await work(400);
            msg.touch();
          }
        } else {
          await work(2_200);
        }
        done.push(msg.body);
      },
    });
    await c.connect();
    await eventually(() => done.length === 2, { timeoutMs: 10_000 });
    await eventually(() => channelCounts(d, topic, 'ch')?.inFlight === 0);
    expect(channelCounts(d, topic, 'ch')).toMatchObject({ timedOut: 0, depth: 0, requeued: 0 });
    expect(c.stats().finished).toBe(2);
  });

  it('without touch the same slow handler loses its message to the msg timeout (control)', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    await publish(d, topic, ['slow']);
    const attempts: number[] = [];
    const c = consumer(d, topic, {
      msgTimeoutMs: 1_000,
      handler: async (msg) => {
        attempts.push(msg.attempts);
        if (msg.attempts === 1) await work(1_500);
      },
    });
    await c.connect();
    await eventually(() => attempts.length === 2, { timeoutMs: 5_000 });
    expect(attempts).toEqual([1, 2]);
    expect(channelCounts(d, topic, 'ch')?.timedOut).toBe(1);
  });

  it('reconnects to an nsqd that was closed and restarted on the same port', async () => {
    const first = await startNsqd();
    const address = first.tcpAddress;
    const topic = uniqueTopic();
    const seen = new Set<string>();
    const events: string[] = [];
    const c = consumer(first, topic, {
      maxInFlight: 4,
      reconnectMinDelayMs: 20,
      reconnectMaxDelayMs: 100,
      handler: (msg) => {
        seen.add(msg.body);
      },
    });
    c.on('connected', () => events.push('connected'));
    c.on('disconnected', () => events.push('disconnected'));
    await c.connect();
    await publish(first, topic, range(5, 'a'));
    await eventually(() => seen.size === 5);
    await first.close();
    await eventually(() => events.includes('disconnected'));
    const second = await nsqd({ tcpAddress: address });
    await eventually(() => events.filter((e) => e === 'connected').length === 2, { timeoutMs: 5_000 });
    await publish(second, topic, range(5, 'b'));
    await eventually(() => seen.size === 10);
    expect(clientRdys(second)).toEqual([4]);
  });

  it('close() waits for in-flight handlers and loses no message', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    const total = 60;
    await publish(d, topic, range(total));
    const handled = new Set<string>();
    let started = 0;
    const c = consumer(d, topic, {
      maxInFlight: 10,
      handler: async (msg) => {
        started++;
        await work(30);
        handled.add(msg.body);
      },
    });
    await c.connect();
    await eventually(() => started >= 10);
    await c.close();
    // Every handler that started has finished, and its FIN reached nsqd before the socket closed.
    expect(handled.size).toBe(started);
    await eventually(() => channelCounts(d, topic, 'ch')?.inFlight === 0);
    expect(channelCounts(d, topic, 'ch')?.depth).toBe(total - handled.size);
    expect(channelCounts(d, topic, 'ch')?.timedOut).toBe(0);
    // A second consumer gets exactly the rest.
    const rest = new Set<string>();
    const c2 = consumer(d, topic, {
      maxInFlight: 10,
      handler: (msg) => {
        expect(handled.has(msg.body)).toBe(false);
        rest.add(msg.body);
      },
    });
    await c2.connect();
    await eventually(() => handled.size + rest.size === total);
  });

  it('break out of for await with a message unanswered: it is requeued at once, close() does not wait for it', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    await publish(d, topic, ['only']);
    // closeTimeoutMs far beyond the test's own timeout: waiting for the abandoned message would fail it.
    const c = consumer(d, topic, { closeTimeoutMs: 120_000 });
    for await (const msg of c) {
      expect(msg.body).toBe('only');
      break;
    }
    expect(channelCounts(d, topic, 'ch')).toMatchObject({ depth: 1, inFlight: 0, requeued: 1, timedOut: 0 });
  }, 10_000);

  it('disconnected carries the error of a close nsqd made, null only for our own close', async () => {
    const d = await startNsqd();
    const topic = uniqueTopic();
    const c = consumer(d, topic, { reconnectMinDelayMs: 50, logger: null });
    const seen: Array<Error | null> = [];
    c.on('disconnected', (_address, err) => seen.push(err));
    await c.connect();
    await d.close();
    await eventually(() => seen.length === 1);
    expect(seen[0]?.message).toMatch(new RegExp(`nsqd ${d.tcpAddress} closed the connection|ECONNRESET`));
    const again = await nsqd({ tcpAddress: d.tcpAddress });
    await eventually(() => c.stats().connections.length === 1, { timeoutMs: 5_000 });
    await c.close();
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBeNull();
    expect(again.nsqd.clients.size).toBe(0);
  });

  it('stats().finished counts only FINs nsqd accepted: not one refused, nor one sent to a closed connection', async () => {
    const d = await startNsqd();
    const topic = uniqueTopic();
    await publish(d, topic, ['late', 'orphan']);
    const c = consumer(d, topic, { maxInFlight: 2, msgTimeoutMs: 1_000, closeTimeoutMs: 1_000, logger: null });
    const errors: Error[] = [];
    c.on('error', (err) => errors.push(err));
    const it = c[Symbol.asyncIterator]();
    const late = (await it.next()).value as Message<string>;
    const orphan = (await it.next()).value as Message<string>;
    // Paused, so nsqd keeps the timed-out message instead of redelivering it under the same ID.
    const pause = await fetch(`http://${d.httpAddress}/channel/pause?topic=${topic}&channel=ch`, { method: 'POST' });
    expect(pause.status).toBe(200);
    await eventually(() => channelCounts(d, topic, 'ch')?.timedOut === 2, { timeoutMs: 5_000 });
    late.finish(); // nsqd refuses it: E_FIN_FAILED
    await eventually(() => errors.some((e) => e.message.includes('E_FIN_FAILED')));
    expect(c.stats().finished).toBe(0);
    // The connection goes away before the other one is finished: that FIN is never sent.
    await d.close();
    await eventually(() => c.stats().connections.length === 0);
    orphan.finish();
    expect(c.stats()).toMatchObject({ received: 2, finished: 0 });
  });

  it('close() requeues messages the async iterator buffered but never handed out', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    await publish(d, topic, range(10));
    const c = new Consumer({ topic, channel: 'ch', nsqdAddresses: [d.tcpAddress], maxInFlight: 10 });
    const it = c[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    await eventually(() => c.stats().inFlight === 10);
    first.value?.finish();
    await c.close();
    expect(await it.next()).toEqual({ value: undefined, done: true });
    await eventually(() => channelCounts(d, topic, 'ch')?.inFlight === 0);
    expect(channelCounts(d, topic, 'ch')).toMatchObject({ depth: 9, timedOut: 0 });
  });

  it('serves 5 nsqds with maxInFlight 2 by rotating RDY between connections', async () => {
    const ds = await Promise.all(Array.from({ length: 5 }, () => nsqd()));
    const topic = uniqueTopic();
    await Promise.all(ds.map((d, i) => publish(d, topic, range(4, `n${i}-`))));
    const seen = new Set<string>();
    let maxConcurrent = 0;
    let concurrent = 0;
    const c = consumer(ds, topic, {
      maxInFlight: 2,
      rdyRedistributeIntervalMs: 100,
      handler: async (msg) => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        await work(5);
        concurrent--;
        seen.add(msg.body);
      },
    });
    await c.connect();
    await eventually(() => c.stats().connections.length === 5);
    // Never more than maxInFlight RDY at once across the connections.
    expect(ds.flatMap((d) => clientRdys(d)).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(2);
    await eventually(() => seen.size === 20, { timeoutMs: 10_000 });
    expect(maxConcurrent).toBeLessThanOrEqual(2);
  });

  it('decodes JSON and MessagePack bodies into typed messages', async () => {
    const d = await nsqd();
    interface Order {
      id: number;
      items: string[];
    }
    const orders: Order[] = [
      { id: 1, items: ['a'] },
      { id: 2, items: ['b', 'c'] },
    ];
    for (const [name, codec] of [
      ['json', jsonCodec<Order>()],
      ['msgpack', msgpackCodec<Order>()],
    ] as const) {
      const topic = uniqueTopic(name);
      const p = new Producer<Order>({ nsqdAddress: d.tcpAddress, codec });
      await p.publishMany(topic, orders);
      await p.close();
      const got: Order[] = [];
      const c = track(new Consumer<Order>({ topic, channel: 'ch', nsqdAddresses: [d.tcpAddress], codec }));
      c.on('message', (msg) => {
        got.push(msg.body);
      });
      await c.connect();
      await eventually(() => got.length === 2);
      expect(got.sort((a, b) => a.id - b.id)).toEqual(orders);
    }
  });
});
