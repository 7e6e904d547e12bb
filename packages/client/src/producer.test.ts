/**
 * Producer against real in-process nsqds over TCP: pipelined publishes, queueing before the
 * connection is ready, server errors with their NSQ code, reconnects, and the host pool riding
 * through an nsqd restart.
 */
import { eventually, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonCodec } from './codecs.js';
import { ClientError, ProtocolError } from './errors.js';
import { Producer } from './producer.js';
import { messageCount, uniqueTopic } from './testing/helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function nsqd(options: Parameters<typeof startNsqd>[0] = {}): Promise<TestNsqd> {
  const d = await startNsqd(options);
  cleanups.push(() => d.close());
  return d;
}

function producer<T = Buffer | string>(p: Producer<T>): Producer<T> {
  cleanups.push(() => p.close());
  return p;
}

describe('Producer', () => {
  it('publishes, pipelines many commands and matches replies in order', async () => {
    const d = await nsqd();
    const p = producer(new Producer({ nsqdAddress: d.tcpAddress }));
    await p.connect();
    const topic = uniqueTopic();
    await p.publish(topic, 'hello');
    await p.publish(topic, Buffer.from([1, 2, 3]));
    await p.publishMany(topic, ['a', 'b', 'c']);
    await p.publishDeferred(topic, 50, 'later');
    // 2000 publishes in flight at once on one connection.
    await Promise.all(Array.from({ length: 2000 }, (_, i) => p.publish(topic, `m${i}`)));
    expect(messageCount(d, topic)).toBe(2 + 3 + 1 + 2000);
  });

  it('queues publishes made before the connection is ready', async () => {
    const d = await nsqd();
    const p = producer(new Producer({ nsqdAddress: d.tcpAddress }));
    const topic = uniqueTopic();
    await Promise.all([p.publish(topic, 'one'), p.publishMany(topic, ['two', 'three'])]);
    expect(messageCount(d, topic)).toBe(3);
  });

  it('surfaces server errors with their NSQ code and keeps working after them', async () => {
    const d = await nsqd({ maxReqTimeoutMs: 1_000 });
    const p = producer(new Producer({ nsqdAddress: d.tcpAddress, reconnectMinDelayMs: 10, logger: null }));
    const topic = uniqueTopic();
    const err = await p.publishDeferred(topic, 5_000, 'too late').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('E_INVALID');
    expect((err as Error).message).toContain(`DPUB timeout 5000 out of range 0-1000 (nsqd ${d.tcpAddress})`);
    // The fatal error closed the connection; the producer reconnects transparently.
    await p.publish(topic, 'small');
    expect(messageCount(d, topic)).toBe(1);
  });

  it("refuses a body over the nsqd's --max-msg-size before sending it, and keeps the connection", async () => {
    const d = await nsqd({ maxMsgSize: 100, maxBodySize: 300 });
    const p = producer(new Producer({ nsqdAddress: d.tcpAddress }));
    await p.connect();
    const [client] = [...d.nsqd.clients];
    const topic = uniqueTopic();
    await expect(p.publish(topic, Buffer.alloc(200, 1))).rejects.toMatchObject({
      code: 'E_INVALID_ARGUMENT',
      message: `E_INVALID_ARGUMENT PUB message too big: 200 bytes > --max-msg-size 100 of nsqd ${d.tcpAddress}`,
    });
    await expect(p.publishDeferred(topic, 10, Buffer.alloc(101, 1))).rejects.toThrow('DPUB message too big');
    await expect(p.publishMany(topic, ['x', Buffer.alloc(101, 1)])).rejects.toThrow('MPUB message too big');
    await expect(
      p.publishMany(
        topic,
        Array.from({ length: 4 }, () => Buffer.alloc(90, 1)),
      ),
    ).rejects.toThrow('MPUB body too big: 380 bytes > --max-body-size 300');
    await p.publish(topic, Buffer.alloc(100, 1));
    expect(messageCount(d, topic)).toBe(1);
    // Nothing reached nsqd that would have made it drop the connection.
    expect([...d.nsqd.clients]).toEqual([client]);
    expect(p.status()[0]).toMatchObject({ ready: true, failures: 0 });
  });

  it('refuses invalid arguments before sending anything', async () => {
    const d = await nsqd();
    const p = producer(new Producer({ nsqdAddress: d.tcpAddress }));
    await expect(p.publish('bad topic!', 'x')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    await expect(p.publish('t', '')).rejects.toBeInstanceOf(ClientError);
    await expect(p.publishMany('t', [])).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    await expect(p.publishDeferred('t', -1, 'x')).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
  });

  it('rejects with E_TIMEOUT, naming the nsqd and its error, when none is reachable within publishTimeoutMs', async () => {
    const d = await nsqd();
    const address = d.tcpAddress;
    await d.close();
    const logged: string[] = [];
    const logger = { warn: (m: string) => logged.push(m), error: (m: string) => logged.push(m) };
    const p = producer(new Producer({ nsqdAddress: address, publishTimeoutMs: 300, reconnectMinDelayMs: 20, logger }));
    const err = await p.publish('t', 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TIMEOUT' });
    expect((err as Error).message).toContain(
      `no nsqd accepted the publish within 300 ms (${address}: E_CONNECT_FAILED`,
    );
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect(logged[0]).toMatch(
      new RegExp(`^E_CONNECT_FAILED cannot connect to nsqd ${address}: .*; retrying in \\d+ ms$`),
    );
  });

  it('a rejected connect() stops the producer: no retries, later publishes refused with the reason', async () => {
    const d = await nsqd();
    const address = d.tcpAddress;
    await d.close();
    const p = producer(new Producer({ nsqdAddress: address, reconnectMinDelayMs: 20, logger: null }));
    const err = await p.connect().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CONNECT_FAILED' });
    expect((err as Error).message).toContain(`cannot connect to nsqd ${address}`);
    await expect(p.publish('t', 'x')).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(p.publish('t', 'x')).rejects.toThrow(
      `producer stopped: E_CONNECT_FAILED cannot connect to nsqd ${address}`,
    );
    expect(p.status()[0]).toMatchObject({ ready: false, failures: 1 });
  });

  it('reconnects to a restarted nsqd and publishes again', async () => {
    const first = await startNsqd();
    const address = first.tcpAddress;
    const p = producer(new Producer({ nsqdAddress: address, reconnectMinDelayMs: 20, reconnectMaxDelayMs: 100 }));
    const topic = uniqueTopic();
    await p.publish(topic, 'before');
    await first.close();
    // Publish while nothing listens: it waits for the reconnect instead of failing.
    const pending = p.publish(topic, 'after');
    const second = await nsqd({ tcpAddress: address });
    await pending;
    expect(messageCount(second, topic)).toBe(1);
  });

  it('a pool over 3 nsqds hides a restart of one of them from callers', async () => {
    const ds = [await startNsqd(), await nsqd(), await nsqd()];
    const victim = ds[0] as TestNsqd;
    const address = victim.tcpAddress;
    const p = producer(
      new Producer({
        nsqdAddresses: ds.map((d) => d.tcpAddress),
        reconnectMinDelayMs: 20,
        reconnectMaxDelayMs: 200,
        epsilon: 0.5,
      }),
    );
    await p.connect();
    await eventually(() => p.status().every((h) => h.ready));
    const topic = uniqueTopic();
    const errors: unknown[] = [];
    let published = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 50 }, (_, i) => p.publish(topic, `m${published + i}`));
        const results = await Promise.allSettled(batch);
        for (const r of results) if (r.status === 'rejected') errors.push(r.reason);
        published += batch.length;
      }
    })();
    await eventually(() => published >= 500);
    await victim.close();
    await eventually(() => !p.status()[0]?.ready);
    const before = published;
    await eventually(() => published >= before + 500);
    const restarted = await nsqd({ tcpAddress: address });
    await eventually(() => p.status().every((h) => h.ready));
    // The restarted host is back in rotation (epsilon picks it even while it is unmeasured).
    await eventually(async () => (messageCount(restarted, topic) ?? 0) > 0);
    stop = true;
    await loop;
    expect(errors).toEqual([]);
    expect(published).toBeGreaterThan(1000);
  });

  it('answers heartbeats, so an idle connection outlives two heartbeat intervals', async () => {
    const d = await nsqd();
    const p = producer(new Producer({ nsqdAddress: d.tcpAddress, heartbeatIntervalMs: 1_000 }));
    await p.connect();
    const [client] = [...d.nsqd.clients];
    // Idle for 2.5 intervals: nsqd drops a client that sends nothing for two of them.
    await new Promise((r) => setTimeout(r, 2_500));
    expect([...d.nsqd.clients]).toEqual([client]);
    await p.publish(uniqueTopic(), 'still here');
    expect(p.status()[0]).toMatchObject({ ready: true, failures: 0 });
  });

  it('encodes bodies with the chosen codec', async () => {
    const d = await nsqd();
    const p = producer(new Producer<{ n: number }>({ nsqdAddress: d.tcpAddress, codec: jsonCodec() }));
    const topic = uniqueTopic();
    await p.publish(topic, { n: 1 });
    await p.publishMany(topic, [{ n: 2 }, { n: 3 }]);
    expect(messageCount(d, topic)).toBe(3);
  });

  it('close() waits for outstanding publishes and then refuses new ones', async () => {
    const d = await nsqd();
    const p = new Producer({ nsqdAddress: d.tcpAddress });
    const topic = uniqueTopic();
    await p.connect();
    const inFlight = Array.from({ length: 200 }, (_, i) => p.publish(topic, `m${i}`));
    await p.close();
    await Promise.all(inFlight);
    await expect(p.publish(topic, 'late')).rejects.toMatchObject({ code: 'E_CLOSED' });
    expect(messageCount(d, topic)).toBe(200);
  });
});
