/**
 * Server-side delivery policies (issue 19) end to end: real nsqd processes, raw V2 bytes
 * (test/support/nsq-wire.ts) and nsqjs, and SIGKILL with a restart on the same data path.
 *
 * - /channel/config: NSQ-style answers and errors; the settings in /stats (extension keys after
 *   NSQ's) and /metrics.
 * - A message REQ'd max_attempts times lands in the dead-letter topic once, body and publish
 *   time unchanged, and never comes back to its channel — with raw bytes and with nsqjs.
 * - SIGKILL while messages are being dead-lettered, --mem-queue-size=0: after the restart every
 *   published message is in the dead-letter topic exactly once, and no delivery on the source
 *   channel ever had more than max_attempts attempts.
 * - /topic/config caps: overflow=reject refuses (non-fatal E_*_FAILED, HTTP 503 TOPIC_FULL) and
 *   accepts again once drained; drop_oldest keeps the newest max_depth, with and without
 *   channels; caps and what they dropped survive a SIGKILL.
 */

import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { channelStats, http, httpJson, httpPost, topicStats, WireClient } from './support/nsq-wire.js';
import { perTestProcesses } from './support/per-test.js';
import { type DaemonProcess, waitUntil } from './support/processes.js';

const resources = perTestProcesses();

function startNsqd(args: readonly string[], dataPath?: string): Promise<DaemonProcess> {
  return resources.group.startNsqd({ name: 'nsqd', lookupdTcpAddresses: [], args, dataPath });
}

async function connect(node: DaemonProcess): Promise<WireClient> {
  const client = await WireClient.connect(node.tcpAddress);
  resources.defer(() => client.destroy());
  return client;
}

async function createChannel(httpAddress: string, topic: string, channel: string): Promise<void> {
  await httpPost(httpAddress, `/topic/create?topic=${topic}`);
  await httpPost(httpAddress, `/channel/create?topic=${topic}&channel=${channel}`);
}

interface NsqjsMessage extends EventEmitter {
  readonly id: string;
  readonly attempts: number;
  readonly body: Buffer;
  readonly timestamp: bigint;
  finish(): void;
  requeue(delayMs?: number, backoff?: boolean): void;
}

interface Nsqjs {
  Reader: new (
    topic: string,
    channel: string,
    options: { nsqdTCPAddresses: string[]; maxInFlight?: number; maxAttempts?: number },
  ) => EventEmitter & { connect(): void; close(): void };
  Writer: new (
    host: string,
    port: number,
  ) => EventEmitter & {
    connect(): void;
    close(): void;
    publish(topic: string, msgs: unknown, callback?: (err?: Error | null) => void): void;
  };
}

const nsq = createRequire(import.meta.url)('nsqjs') as Nsqjs;

/** An nsqjs Reader of `topic/channel` that finishes every message; the bodies in arrival order. */
function nsqjsFinishing(node: DaemonProcess, topic: string, channel: string): string[] {
  const got: string[] = [];
  const reader = new nsq.Reader(topic, channel, { nsqdTCPAddresses: [node.tcpAddress] });
  resources.defer(() => reader.close());
  reader.on('message', (m: NsqjsMessage) => {
    got.push(m.body.toString());
    m.finish();
  });
  reader.connect();
  return got;
}

/** A consumer of `topic/channel` with RDY `rdy` that FINishes every message; the bodies in arrival order. */
async function finishing(
  node: DaemonProcess,
  topic: string,
  channel: string,
  rdy: number,
): Promise<{ got: string[]; client: WireClient }> {
  const got: string[] = [];
  const client = await connect(node);
  client.onMessage = (m) => {
    got.push(m.body.toString());
    client.fin(m.id);
  };
  await client.sub(topic, channel);
  client.rdy(rdy);
  return { got, client };
}

async function finishAll(node: DaemonProcess, topic: string, channel: string): Promise<string[]> {
  return (await finishing(node, topic, channel, 10)).got;
}

/**
 * Consumes `topic` on a new channel until every one of `bodies` arrived; true when each arrived
 * exactly once and nothing else did.
 */
async function receiveEachOnce(node: DaemonProcess, topic: string, bodies: readonly Buffer[]): Promise<boolean> {
  const received = new Map<string, number>();
  const inspector = await connect(node);
  inspector.onMessage = (m) => {
    const b = m.body.toString();
    received.set(b, (received.get(b) ?? 0) + 1);
    inspector.fin(m.id);
  };
  await inspector.sub(topic, 'inspect');
  inspector.rdy(100);
  const wanted = new Set(bodies.map((b) => b.toString()));
  await waitUntil(`every message of ${topic} received`, () => received.size >= wanted.size, { timeoutMs: 30_000 });
  return [...received.values()].every((n) => n === 1) && [...received.keys()].every((b) => wanted.has(b));
}

describe('/channel/config', () => {
  it('sets and reads max_attempts and dead_letter_topic, refuses bad values NSQ-style, shows them in /stats and /metrics', async () => {
    const node = await startNsqd(['--max-attempts=7']);
    const h = node.httpAddress;
    await createChannel(h, 't', 'c');
    expect(await httpJson(h, '/channel/config?topic=t&channel=c')).toEqual({ max_attempts: 7, dead_letter_topic: '' });
    expect(await httpPost(h, '/channel/config?topic=t&channel=c&dead_letter_topic=t.dead')).toBe('OK');
    expect(await httpJson(h, '/channel/config?topic=t&channel=c')).toEqual({
      max_attempts: 7,
      dead_letter_topic: 't.dead',
    });
    const bad = async (query: string) => {
      const r = await http(h, `/channel/config?${query}`, { method: 'POST' });
      return [r.status, JSON.parse(r.text).message];
    };
    expect(await bad('topic=t&channel=c&max_attempts=-1')).toEqual([400, 'INVALID_MAX_ATTEMPTS']);
    expect(await bad('topic=t&channel=c&max_attempts=65536')).toEqual([400, 'INVALID_MAX_ATTEMPTS']);
    expect(await bad('topic=t&channel=c&dead_letter_topic=no*good')).toEqual([400, 'INVALID_TOPIC']);
    expect(await bad('topic=t&channel=c')).toEqual([400, 'MISSING_ARG_CONFIG']);
    expect(await bad('topic=t&channel=nope&max_attempts=1')).toEqual([404, 'CHANNEL_NOT_FOUND']);
    expect(await bad('topic=nope&channel=c&max_attempts=1')).toEqual([404, 'TOPIC_NOT_FOUND']);
    expect(await httpPost(h, '/channel/config?topic=t&channel=c&max_attempts=0')).toBe('OK');
    const c = await channelStats(h, 't', 'c');
    const keys = Object.keys(c);
    // NSQ's keys first, unchanged; the extensions after them.
    expect(keys.slice(keys.indexOf('e2e_processing_latency'))).toEqual([
      'e2e_processing_latency',
      'max_attempts',
      'dead_letter_topic',
      'dead_lettered_count',
      'dropped_count',
      'expired_count',
      'replay_count',
    ]);
    expect(c).toMatchObject({ max_attempts: 0, dead_letter_topic: 't.dead', dead_lettered_count: 0 });
    const metrics = (await http(h, '/metrics')).text;
    expect(metrics).toContain('nsq_channel_dead_lettered_total{topic="t",channel="c"} 0');
  });
});

describe('dead letters', () => {
  it('raw V2: a message REQd max_attempts times lands in the dead-letter topic once and never comes back', async () => {
    const node = await startNsqd([]);
    const h = node.httpAddress;
    await createChannel(h, 't', 'c');
    await httpPost(h, '/channel/config?topic=t&channel=c&max_attempts=3&dead_letter_topic=t.dead');
    await createChannel(h, 't.dead', 'inspect');
    const got: { body: string; attempts: number }[] = [];
    const consumer = await connect(node);
    consumer.onMessage = (m) => {
      got.push({ body: m.body.toString(), attempts: m.attempts });
      if (m.body.toString() === 'poison') consumer.req(m.id, 0);
      else consumer.fin(m.id);
    };
    await consumer.sub('t', 'c');
    consumer.rdy(10);
    const publisher = await connect(node);
    await publisher.pub('t', 'poison');
    await waitUntil('dead-lettered', async () => (await channelStats(h, 't', 'c')).dead_lettered_count === 1);
    expect(got).toEqual([1, 2, 3].map((attempts) => ({ body: 'poison', attempts })));
    const dead: { body: string; attempts: number }[] = [];
    const inspector = await connect(node);
    inspector.onMessage = (m) => {
      dead.push({ body: m.body.toString(), attempts: m.attempts });
      inspector.fin(m.id);
    };
    await inspector.sub('t.dead', 'inspect');
    inspector.rdy(10);
    await waitUntil('dead letter received', () => dead.length === 1);
    expect(dead).toEqual([{ body: 'poison', attempts: 1 }]);
    // Nothing more anywhere: a PUB behind it on t arrives, the poison does not.
    await publisher.pub('t', 'next');
    await waitUntil('next received', () => got.length === 4);
    expect(got[3]).toEqual({ body: 'next', attempts: 1 });
    const c = await channelStats(h, 't', 'c');
    expect([c.depth, c.deferred_count]).toEqual([0, 0]);
    expect((await topicStats(h, 't.dead')).message_count).toBe(1);
    expect((await http(h, '/metrics')).text).toContain('nsq_channel_dead_lettered_total{topic="t",channel="c"} 1');
  });

  it('nsqjs: a Reader that always requeues sees max_attempts deliveries; a Reader on the dead-letter topic gets it, body and timestamp unchanged', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd(['--max-attempts=2', '--dead-letter-topic=dlq']);
    const h = node.httpAddress;
    await createChannel(h, 'jobs', 'workers');
    await createChannel(h, 'dlq', 'ops');
    const [host, port] = node.tcpAddress.split(':') as [string, string];
    const writer = new nsq.Writer(host, Number(port));
    resources.defer(() => writer.close());
    writer.connect();
    await new Promise((resolve) => writer.once('ready', resolve));
    const seen: [string, number, bigint][] = [];
    const workers = new nsq.Reader('jobs', 'workers', { nsqdTCPAddresses: [node.tcpAddress], maxInFlight: 5 });
    resources.defer(() => workers.close());
    workers.on('message', (m: NsqjsMessage) => {
      seen.push([m.body.toString(), m.attempts, m.timestamp]);
      m.requeue(0, false);
    });
    workers.connect();
    const dead: [string, number, bigint][] = [];
    const ops = new nsq.Reader('dlq', 'ops', { nsqdTCPAddresses: [node.tcpAddress] });
    resources.defer(() => ops.close());
    ops.on('message', (m: NsqjsMessage) => {
      dead.push([m.body.toString(), m.attempts, m.timestamp]);
      m.finish();
    });
    ops.connect();
    await new Promise<void>((resolve, reject) =>
      writer.publish('jobs', ['a', 'b'], (err) => (err ? reject(err) : resolve())),
    );
    await waitUntil('both dead-lettered', () => dead.length === 2, { timeoutMs: 20_000 });
    expect(dead.map(([b]) => b).sort()).toEqual(['a', 'b']);
    for (const [body, attempts, timestamp] of dead) {
      expect(attempts).toBe(1);
      expect(timestamp).toBe(seen.find(([b]) => b === body)?.[2]);
    }
    expect(seen.map(([b, a]) => `${b}${a}`).sort()).toEqual(['a1', 'a2', 'b1', 'b2']);
    expect((await channelStats(h, 'jobs', 'workers')).dead_lettered_count).toBe(2);
  });

  it('SIGKILL while dead-lettering (--mem-queue-size=0): the settings are kept, every message is in the dead-letter topic exactly once after the restart', {
    timeout: 90_000,
  }, async () => {
    const N = 400;
    const args = ['--mem-queue-size=0', '--dead-letter-topic=dead', '--msg-timeout=60s'];
    const node = await startNsqd(args);
    await createChannel(node.httpAddress, 't', 'c');
    // Stored by the flush that answers the first MPUB below (durable mode) at the latest.
    await httpPost(node.httpAddress, '/channel/config?topic=t&channel=c&max_attempts=2');
    const publisher = await connect(node);
    const bodies = Array.from({ length: N }, (_, i) => Buffer.from(`m${i}`));
    for (let i = 0; i < N; i += 100) await publisher.mpub('t', bodies.slice(i, i + 100));
    const attempts: number[] = [];
    const requeueAll = async (n: DaemonProcess) => {
      const consumer = await connect(n);
      consumer.onMessage = (m) => {
        attempts.push(m.attempts);
        consumer.req(m.id, 0);
      };
      await consumer.sub('t', 'c');
      consumer.rdy(20);
      return consumer;
    };
    await requeueAll(node);
    await waitUntil('some dead-lettered', async () => {
      return ((await channelStats(node.httpAddress, 't', 'c')).dead_lettered_count ?? 0) >= N / 4;
    });
    node.note('SIGKILL');
    node.signal('SIGKILL');
    await node.exited;
    const again = await resources.group.restart(node);
    expect(await httpJson(again.httpAddress, '/channel/config?topic=t&channel=c')).toEqual({
      max_attempts: 2,
      dead_letter_topic: 'dead',
    });
    await requeueAll(again);
    await waitUntil(
      'the source channel is empty',
      async () => {
        const c = await channelStats(again.httpAddress, 't', 'c');
        return c.depth === 0 && c.in_flight_count === 0 && c.deferred_count === 0;
      },
      { timeoutMs: 30_000 },
    );
    expect(Math.max(...attempts)).toBe(2);
    // The dead-letter topic has no channel: its depth is what it stores.
    expect((await topicStats(again.httpAddress, 'dead')).depth).toBe(N);
    expect(await receiveEachOnce(again, 'dead', bodies)).toBe(true);
  });
});

describe('/topic/config caps', () => {
  it('overflow=reject: PUB/MPUB/DPUB past max_depth fail non-fatally, HTTP 503 TOPIC_FULL, nothing of a refused MPUB stored; accepted again once drained; kept across SIGKILL', {
    timeout: 60_000,
  }, async () => {
    const node = await startNsqd(['--mem-queue-size=0']);
    const h = node.httpAddress;
    await createChannel(h, 'capped', 'c');
    const bad = await http(h, '/topic/config?topic=capped&overflow=never', { method: 'POST' });
    expect([bad.status, JSON.parse(bad.text).message]).toEqual([400, 'INVALID_OVERFLOW']);
    expect(await httpPost(h, '/topic/config?topic=capped&max_depth=3')).toBe('OK');
    expect(await httpJson(h, '/topic/config?topic=capped')).toEqual({
      max_depth: 3,
      max_bytes: 0,
      overflow: 'reject',
      message_ttl: '0s',
      retention: '0s',
    });
    const p = await connect(node);
    await p.mpub('capped', [Buffer.from('a'), Buffer.from('b')]);
    await expect(p.mpub('capped', [Buffer.from('x'), Buffer.from('y')])).rejects.toThrow(/E_MPUB_FAILED/);
    await p.pub('capped', 'c');
    await expect(p.pub('capped', 'x')).rejects.toThrow(/E_PUB_FAILED/);
    await expect(p.dpub('capped', 10, 'x')).rejects.toThrow(/E_DPUB_FAILED/);
    const r = await http(h, '/pub?topic=capped', { method: 'POST', body: 'x' });
    expect([r.status, JSON.parse(r.text).message]).toEqual([503, 'TOPIC_FULL']);
    expect(p.isClosed).toBe(false);
    const t = await topicStats(h, 'capped');
    expect([t.channels[0]?.depth, t.rejected_count]).toEqual([3, 4]);
    node.signal('SIGKILL');
    await node.exited;
    const again = await resources.group.restart(node);
    expect(await httpJson(again.httpAddress, '/topic/config?topic=capped')).toMatchObject({ max_depth: 3 });
    const got = await finishAll(again, 'capped', 'c');
    await waitUntil(
      'drained',
      async () => (await channelStats(again.httpAddress, 'capped', 'c')).depth === 0 && got.length === 3,
    );
    expect(got).toEqual(['a', 'b', 'c']);
    const p2 = await connect(again);
    await p2.pub('capped', 'd');
    await waitUntil('d delivered', () => got.length === 4);
  });

  it('overflow=drop_oldest keeps exactly the newest max_depth for a lagging channel, counted; nsqjs reads them', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd(['--max-depth=5', '--overflow=drop_oldest']);
    const h = node.httpAddress;
    await createChannel(h, 'ring', 'slow');
    const p = await connect(node);
    await p.mpub(
      'ring',
      Array.from({ length: 12 }, (_, i) => Buffer.from(`m${i}`)),
    );
    for (let i = 12; i < 15; i++) await p.pub('ring', `m${i}`);
    const c = await channelStats(h, 'ring', 'slow');
    expect([c.depth, c.dropped_count]).toEqual([5, 10]);
    expect((await http(h, '/metrics')).text).toContain('nsq_channel_dropped_total{topic="ring",channel="slow"} 10');
    const got: string[] = [];
    const reader = new nsq.Reader('ring', 'slow', { nsqdTCPAddresses: [node.tcpAddress], maxInFlight: 10 });
    resources.defer(() => reader.close());
    reader.on('message', (m: NsqjsMessage) => {
      got.push(m.body.toString());
      m.finish();
    });
    reader.connect();
    await waitUntil('five received', () => got.length === 5);
    expect(got).toEqual(['m10', 'm11', 'm12', 'm13', 'm14']);
  });

  it('drop_oldest without channels: the topic keeps its newest max_depth, across a SIGKILL', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd(['--mem-queue-size=0']);
    const h = node.httpAddress;
    await httpPost(h, '/topic/create?topic=buf');
    await httpPost(h, '/topic/config?topic=buf&max_depth=4&overflow=drop_oldest');
    const p = await connect(node);
    for (let i = 0; i < 10; i++) await p.pub('buf', `m${i}`);
    expect(await topicStats(h, 'buf')).toMatchObject({ depth: 4, dropped_count: 6 });
    node.signal('SIGKILL');
    await node.exited;
    const again = await resources.group.restart(node);
    expect((await topicStats(again.httpAddress, 'buf')).depth).toBe(4);
    const got = await finishAll(again, 'buf', 'c');
    await waitUntil('four received', () => got.length === 4);
    expect(got).toEqual(['m6', 'm7', 'm8', 'm9']);
  });
});

/** Polls until `ms` of wall time have passed since `since` (the TTL's own clock is the wall clock). */
async function agedPast(since: number, ms: number): Promise<void> {
  await waitUntil(`${ms} ms passed`, () => Date.now() - since > ms, { timeoutMs: ms + 10_000 });
}

describe('/topic/config message_ttl', () => {
  it('raw V2: messages older than the TTL are never delivered, an in-flight one is not cut short; counted in /stats and /metrics', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd(['--msg-timeout=60s']);
    const h = node.httpAddress;
    await createChannel(h, 'ttl', 'c');
    const bad = await http(h, '/topic/config?topic=ttl&message_ttl=5', { method: 'POST' });
    expect([bad.status, JSON.parse(bad.text).message]).toEqual([400, 'INVALID_MESSAGE_TTL']);
    expect(await httpPost(h, '/topic/config?topic=ttl&message_ttl=1.5s')).toBe('OK');
    expect(await httpJson(h, '/topic/config?topic=ttl')).toMatchObject({ message_ttl: '1.5s' });
    const got: { id: string; body: string }[] = [];
    const consumer = await connect(node);
    consumer.onMessage = (m) => got.push({ id: m.id, body: m.body.toString() });
    await consumer.sub('ttl', 'c');
    consumer.rdy(1);
    const publisher = await connect(node);
    await publisher.pub('ttl', 'held');
    await waitUntil('held in flight', () => got.length === 1);
    const published = Date.now();
    await publisher.mpub('ttl', [Buffer.from('old0'), Buffer.from('old1')]);
    await agedPast(published, 1_500);
    // Past its TTL while in flight: its FIN is still accepted.
    consumer.fin((got[0] as { id: string }).id);
    await waitUntil('expired', async () => (await channelStats(h, 'ttl', 'c')).expired_count === 2);
    await publisher.pub('ttl', 'fresh');
    await waitUntil('fresh received', () => got.length === 2);
    expect(got.map((m) => m.body)).toEqual(['held', 'fresh']);
    expect(consumer.errors).toEqual([]);
    const t = await topicStats(h, 'ttl');
    expect([t.message_ttl, t.expired_count, t.channels[0]?.depth, t.channels[0]?.in_flight_count]).toEqual([
      '1.5s',
      2,
      0,
      1,
    ]);
    const metrics = (await http(h, '/metrics')).text;
    expect(metrics).toContain('nsq_channel_expired_total{topic="ttl",channel="c"} 2');
    expect(metrics).toContain('nsq_topic_expired_total{topic="ttl"} 2');
  });

  it('nsqjs: a Reader gets what is younger than --message-ttl, not what aged in the queue', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd(['--message-ttl=1s']);
    const h = node.httpAddress;
    await createChannel(h, 'jobs', 'w');
    const publisher = await connect(node);
    const published = Date.now();
    await publisher.mpub('jobs', [Buffer.from('stale0'), Buffer.from('stale1')]);
    await agedPast(published, 1_000);
    await publisher.pub('jobs', 'fresh');
    const got = nsqjsFinishing(node, 'jobs', 'w');
    await waitUntil('fresh received', () => got.length === 1);
    expect(got).toEqual(['fresh']);
    expect((await channelStats(h, 'jobs', 'w')).expired_count).toBe(2);
  });

  it('SIGKILL around expiry into a dead-letter topic (--mem-queue-size=0): the TTL is kept, each expired message is in the dead-letter topic exactly once', {
    timeout: 60_000,
  }, async () => {
    const N = 300;
    const node = await startNsqd(['--mem-queue-size=0']);
    const h = node.httpAddress;
    await createChannel(h, 't', 'c');
    await httpPost(h, '/channel/config?topic=t&channel=c&dead_letter_topic=t.expired');
    const publisher = await connect(node);
    const bodies = Array.from({ length: N }, (_, i) => Buffer.from(`m${i}`));
    const published = Date.now();
    for (let i = 0; i < N; i += 100) await publisher.mpub('t', bodies.slice(i, i + 100));
    // Stored by the first flush after it; the publish answered below waits for that flush.
    await httpPost(h, '/topic/config?topic=t&message_ttl=1s');
    await publisher.pub('t.other', 'flushed');
    await agedPast(published, 1_000);
    const delivered: string[] = [];
    const consume = async (n: DaemonProcess) => {
      const consumer = await connect(n);
      consumer.onMessage = (m) => {
        delivered.push(m.body.toString());
        consumer.fin(m.id);
      };
      await consumer.sub('t', 'c');
      consumer.rdy(50);
    };
    await consume(node);
    await waitUntil('some expired', async () => ((await channelStats(h, 't', 'c')).expired_count ?? 0) > 0);
    node.signal('SIGKILL');
    await node.exited;
    const again = await resources.group.restart(node);
    expect(await httpJson(again.httpAddress, '/topic/config?topic=t')).toMatchObject({ message_ttl: '1s' });
    await consume(again);
    await waitUntil(
      'the source channel is empty',
      async () => (await channelStats(again.httpAddress, 't', 'c')).depth === 0,
    );
    expect(delivered).toEqual([]);
    await waitUntil(
      'every expired message stored',
      async () => (await topicStats(again.httpAddress, 't.expired')).depth === N,
    );
    expect(await receiveEachOnce(again, 't.expired', bodies)).toBe(true);
  });
});

describe('/channel/replay with retention', () => {
  it('raw V2: a channel that FINished everything gets the messages since T0 (or from an offset) again, in order; other channels unaffected; NSQ-style errors', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd(['--retention=1h']);
    const h = node.httpAddress;
    await createChannel(h, 'r', 'c');
    await httpPost(h, '/channel/create?topic=r&channel=other');
    const got = await finishAll(node, 'r', 'c');
    const other = await finishAll(node, 'r', 'other');
    const publisher = await connect(node);
    await publisher.mpub('r', [Buffer.from('m0'), Buffer.from('m1')]);
    await waitUntil('first two consumed', () => got.length === 2);
    // Publish times are milliseconds: T0 is strictly after m0 and m1.
    const t0 = Date.now() + 1;
    await waitUntil('T0 reached', () => Date.now() > t0);
    await publisher.mpub('r', [Buffer.from('m2'), Buffer.from('m3'), Buffer.from('m4')]);
    await waitUntil('all consumed', () => got.length === 5 && other.length === 5);
    const replay = (query: string) => http(h, `/channel/replay?topic=r&channel=c&${query}`, { method: 'POST' });
    const ok = await replay(`since=${t0}`);
    expect([ok.status, ok.text]).toEqual([200, '']);
    await waitUntil('replayed since T0', () => got.length === 8);
    expect(got.slice(5)).toEqual(['m2', 'm3', 'm4']);
    expect((await replay(`since=${new Date(0).toISOString()}`)).status).toBe(200);
    await waitUntil('replayed from the start', () => got.length === 13);
    expect(got.slice(8)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect((await replay('offset=3')).status).toBe(200);
    await waitUntil('replayed from offset 3', () => got.length === 15);
    expect(got.slice(13)).toEqual(['m3', 'm4']);
    const c = await channelStats(h, 'r', 'c');
    expect([c.replay_count, c.depth, c.in_flight_count]).toEqual([3, 0, 0]);
    expect(other).toHaveLength(5);
    expect((await channelStats(h, 'r', 'other')).depth).toBe(0);
    const code = async (query: string) => {
      const r = await replay(query);
      return [r.status, JSON.parse(r.text).message];
    };
    expect(await code('')).toEqual([400, 'MISSING_ARG_SINCE']);
    expect(await code('since=yesterday')).toEqual([400, 'INVALID_ARG_SINCE']);
    expect(await code('since=1&offset=0')).toEqual([400, 'INVALID_ARG_SINCE']);
    expect(await code('offset=6')).toEqual([400, 'INVALID_ARG_OFFSET']);
    const missing = await http(h, '/channel/replay?topic=r&channel=nope&since=0', { method: 'POST' });
    expect(missing.status).toBe(404);
    expect((await http(h, '/metrics')).text).toContain('nsq_channel_replays_total{topic="r",channel="c"} 3');
    expect(await httpJson(h, '/topic/config?topic=r')).toMatchObject({ retention: '1h0m0s' });
  });

  it('a time no longer retained answers 400 REPLAY_UNAVAILABLE naming the earliest time still available', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd(['--sync-timeout=50ms', '--max-bytes-per-file=100']);
    const h = node.httpAddress;
    await createChannel(h, 'short', 'c');
    await httpPost(h, '/topic/config?topic=short&retention=300ms');
    const got = await finishAll(node, 'short', 'c');
    const publisher = await connect(node);
    await publisher.pub('short', 'gone');
    await waitUntil('consumed', () => got.length === 1);
    const replay = (query: string) => http(h, `/channel/replay?topic=short&channel=c&${query}`, { method: 'POST' });
    // A time after everything is a replay of nothing while anything is retained.
    const future = Date.now() + 3_600_000;
    await waitUntil('its segment deleted', async () => (await replay(`since=${future}`)).status === 400);
    expect(JSON.parse((await replay('since=0')).text).message).toBe(
      'REPLAY_UNAVAILABLE: earliest available offset 1 (nothing retained)',
    );
    const before = Date.now();
    await publisher.pub('short', 'kept');
    await waitUntil('kept consumed', () => got.length === 2);
    const r = await replay('since=0');
    const message = JSON.parse(r.text).message as string;
    expect(r.status).toBe(400);
    const earliest = Date.parse(message.replace('REPLAY_UNAVAILABLE: earliest available ', ''));
    expect(earliest).toBeGreaterThanOrEqual(before);
    expect(earliest).toBeLessThanOrEqual(Date.now());
    expect(JSON.parse((await replay('offset=0')).text).message).toBe('REPLAY_UNAVAILABLE: earliest available offset 1');
    expect((await replay(`since=${earliest}`)).status).toBe(200);
    await waitUntil('kept replayed', () => got.length === 3);
    expect(got).toEqual(['gone', 'kept', 'kept']);
  });

  it('nsqjs: a Reader gets the replayed messages again', { timeout: 30_000 }, async () => {
    const node = await startNsqd(['--retention=1h']);
    const h = node.httpAddress;
    await createChannel(h, 'jobs', 'w');
    const got = nsqjsFinishing(node, 'jobs', 'w');
    const publisher = await connect(node);
    await publisher.mpub('jobs', [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]);
    await waitUntil('consumed', () => got.length === 3);
    await httpPost(h, '/channel/replay?topic=jobs&channel=w&offset=0');
    await waitUntil('replayed', () => got.length === 6);
    expect(got).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('SIGKILL in the middle of a replay: after the restart the rest of the replay arrives, nothing lost, other channels unaffected', {
    timeout: 90_000,
  }, async () => {
    const N = 300;
    const node = await startNsqd(['--retention=1h', '--mem-queue-size=50']);
    const h = node.httpAddress;
    await createChannel(h, 'r', 'c');
    await httpPost(h, '/channel/create?topic=r&channel=other');
    const bodies = Array.from({ length: N }, (_, i) => Buffer.from(`m${i}`));
    const publisher = await connect(node);
    for (let i = 0; i < N; i += 100) await publisher.mpub('r', bodies.slice(i, i + 100));
    const first = await finishing(node, 'r', 'c', 10);
    const other = await finishAll(node, 'r', 'other');
    await waitUntil('all consumed', () => first.got.length === N && other.length === N);
    first.client.destroy();
    await waitUntil('c has no consumer', async () => (await channelStats(h, 'r', 'c')).client_count === 0);
    expect(await httpPost(h, '/channel/replay?topic=r&channel=c&offset=0')).toBe('');
    // RDY 1: the replay goes out one message at a time.
    const { got: replayed } = await finishing(node, 'r', 'c', 1);
    await waitUntil('part of the replay received', () => replayed.length >= N / 3);
    node.signal('SIGKILL');
    await node.exited;
    const again = await resources.group.restart(node);
    const rest = await finishAll(again, 'r', 'c');
    const otherAgain = await finishAll(again, 'r', 'other');
    await waitUntil('the replay finished', async () => {
      const c = await channelStats(again.httpAddress, 'r', 'c');
      return c.depth === 0 && c.in_flight_count === 0 && rest.length > 0;
    });
    // At least once: every message of the replay arrives; what was in progress may come twice.
    const all = [...replayed, ...rest];
    expect(new Set(all)).toEqual(new Set(bodies.map((b) => b.toString())));
    expect(rest.at(-1)).toBe(`m${N - 1}`);
    expect(otherAgain.length).toBeLessThan(N);
    expect((await channelStats(again.httpAddress, 'r', 'other')).depth).toBe(0);
  });
});

describe('/topic/redrive', () => {
  it('raw V2 and nsqjs: dead letters go back to their topic, up to max, each once; NSQ-style errors', {
    timeout: 30_000,
  }, async () => {
    const node = await startNsqd([]);
    const h = node.httpAddress;
    await createChannel(h, 't', 'c');
    await httpPost(h, '/channel/config?topic=t&channel=c&max_attempts=1&dead_letter_topic=t.dead');
    const failing = await connect(node);
    failing.onMessage = (m) => failing.req(m.id, 0);
    await failing.sub('t', 'c');
    failing.rdy(10);
    const publisher = await connect(node);
    await publisher.mpub('t', [Buffer.from('p0'), Buffer.from('p1'), Buffer.from('p2')]);
    await waitUntil('dead-lettered', async () => (await channelStats(h, 't', 'c')).dead_lettered_count === 3);
    failing.destroy();
    const redrive = async (query: string) => {
      const r = await http(h, `/topic/redrive?${query}`, { method: 'POST' });
      return [r.status, JSON.parse(r.text)];
    };
    expect(await redrive('topic=t.dead')).toEqual([400, { message: 'MISSING_ARG_TO' }]);
    expect(await redrive('topic=t.dead&to=t.dead')).toEqual([400, { message: 'INVALID_ARG_TO' }]);
    expect(await redrive('topic=t.dead&to=t&max=-1')).toEqual([400, { message: 'INVALID_ARG_MAX' }]);
    expect(await redrive('topic=nope&to=t')).toEqual([404, { message: 'TOPIC_NOT_FOUND' }]);
    expect(await redrive('topic=t.dead&to=t&max=2')).toEqual([200, { moved: 2 }]);
    expect((await topicStats(h, 't.dead')).depth).toBe(1);
    const got = nsqjsFinishing(node, 't', 'c');
    await waitUntil('two redriven received', () => got.length === 2);
    expect(await redrive('topic=t.dead&to=t')).toEqual([200, { moved: 1 }]);
    expect(await redrive('topic=t.dead&to=t')).toEqual([200, { moved: 0 }]);
    await waitUntil('all redriven received', () => got.length === 3);
    expect(got).toEqual(['p0', 'p1', 'p2']);
    expect((await topicStats(h, 't.dead')).redriven_count).toBe(3);
    expect((await http(h, '/metrics')).text).toContain('nsq_topic_redriven_total{topic="t.dead"} 3');
    // A dead-letter topic with a channel: what its first channel has ready.
    await createChannel(h, 'd2', 'inspect');
    await publisher.mpub('d2', [Buffer.from('x'), Buffer.from('y')]);
    expect(await redrive('topic=d2&to=t')).toEqual([200, { moved: 2 }]);
    await waitUntil('x and y received', () => got.length === 5);
    expect(got.slice(3)).toEqual(['x', 'y']);
    expect((await channelStats(h, 'd2', 'inspect')).depth).toBe(0);
  });

  for (const withChannel of [false, true]) {
    it(`SIGKILL in the middle of a redrive (dead-letter topic ${withChannel ? 'with a channel' : 'without channels'}, --mem-queue-size=0): after the restart and a second redrive each message is in the target once`, {
      timeout: 120_000,
    }, async () => {
      const N = 20_000;
      const node = await startNsqd(['--mem-queue-size=0']);
      const h = node.httpAddress;
      await httpPost(h, '/topic/create?topic=dead');
      if (withChannel) await httpPost(h, '/channel/create?topic=dead&channel=inspect');
      await httpPost(h, '/topic/create?topic=back');
      const bodies = Array.from({ length: N }, (_, i) => Buffer.from(`m${i}`));
      const publisher = await connect(node);
      for (let i = 0; i < N; i += 1000) await publisher.mpub('dead', bodies.slice(i, i + 1000));
      const first = http(h, '/topic/redrive?topic=dead&to=back', { method: 'POST' }).catch(() => null);
      await waitUntil('the redrive under way', async () => ((await topicStats(h, 'back')).depth ?? 0) > 0);
      node.signal('SIGKILL');
      await node.exited;
      const answered = await first;
      const again = await resources.group.restart(node);
      const a = again.httpAddress;
      const second = JSON.parse(await httpPost(a, '/topic/redrive?topic=dead&to=back')) as { moved: number };
      if (answered !== null) expect(second.moved).toBe(0);
      expect((await topicStats(a, 'dead')).depth).toBe(0);
      expect((await topicStats(a, 'back')).depth).toBe(N);
      expect(await receiveEachOnce(again, 'back', bodies)).toBe(true);
    });
  }
});
