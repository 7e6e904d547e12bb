import { decodeMessage, encodeCommand, FrameType } from '@nsq-ts/protocol';
import { eventually, RawClient, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { Nsqd } from '../nsqd.js';
import type { NsqdOptions } from '../options.js';
import { collectStats } from './collect.js';
import type { StatsFilter, StatsSnapshot } from './types.js';

let daemon: TestNsqd | null = null;
const clients: RawClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await daemon?.close();
  daemon = null;
});

async function nsqd(options: Partial<NsqdOptions> = {}): Promise<TestNsqd> {
  daemon = await startNsqd(options);
  return daemon;
}

/** test-utils runs the built nsqd; collectStats reads it structurally. */
function stats(d: TestNsqd, filter: Partial<StatsFilter> = {}): StatsSnapshot {
  return collectStats(d.nsqd as unknown as Nsqd, { includeClients: true, includeMem: true, ...filter });
}

async function connect(d: TestNsqd, identify?: object): Promise<RawClient> {
  const c = await RawClient.connect(d.tcpAddress);
  clients.push(c);
  if (identify !== undefined) {
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify(identify)));
    expect((await c.readFrame()).data.toString()).toBe('OK');
  }
  return c;
}

async function publish(c: RawClient, topic: string, bodies: string[]): Promise<void> {
  for (const b of bodies) c.write(encodeCommand('PUB', [topic], b));
  for (const _ of bodies) expect((await c.readFrame()).data.toString()).toBe('OK');
}

async function subscribe(d: TestNsqd, topic: string, channel: string, identify?: object): Promise<RawClient> {
  const c = await connect(d, identify);
  c.write(`SUB ${topic} ${channel}\n`);
  expect((await c.readFrame()).data.toString()).toBe('OK');
  return c;
}

async function readMessage(c: RawClient) {
  const frame = await c.readFrame();
  expect(frame.type).toBe(FrameType.Message);
  return decodeMessage(frame.data);
}

const TOP_KEYS = ['version', 'health', 'start_time', 'topics', 'memory', 'producers'];
const TOPIC_KEYS = [
  'topic_name',
  'channels',
  'depth',
  'backend_depth',
  'message_count',
  'message_bytes',
  'paused',
  'e2e_processing_latency',
  // nsq-ts extensions, after NSQ's keys.
  'corrupt_records',
  'max_depth',
  'max_bytes',
  'overflow',
  'rejected_count',
  'dropped_count',
  'message_ttl',
  'expired_count',
  'retention',
  'redriven_count',
];
const CHANNEL_KEYS = [
  'channel_name',
  'depth',
  'backend_depth',
  'in_flight_count',
  'deferred_count',
  'message_count',
  'requeue_count',
  'timeout_count',
  'client_count',
  'clients',
  'paused',
  'e2e_processing_latency',
  // nsq-ts extensions (delivery policies), after NSQ's keys.
  'max_attempts',
  'dead_letter_topic',
  'dead_lettered_count',
  'dropped_count',
  'expired_count',
  'replay_count',
];
const CLIENT_HEAD = [
  'client_id',
  'hostname',
  'version',
  'remote_address',
  'state',
  'ready_count',
  'in_flight_count',
  'message_count',
  'finish_count',
  'requeue_count',
  'connect_ts',
  'sample_rate',
  'deflate',
  'snappy',
  'user_agent',
];
const CLIENT_TLS = [
  'tls',
  'tls_cipher_suite',
  'tls_version',
  'tls_negotiated_protocol',
  'tls_negotiated_protocol_is_mutual',
];
const MEM_KEYS = [
  'heap_objects',
  'heap_idle_bytes',
  'heap_in_use_bytes',
  'heap_released_bytes',
  'gc_pause_usec_100',
  'gc_pause_usec_99',
  'gc_pause_usec_95',
  'next_gc_bytes',
  'gc_total_runs',
];

/** Every number in the snapshot except e2e quantiles/values must be a JSON integer. */
function expectIntegers(value: unknown, path = ''): void {
  if (typeof value === 'number') {
    if (!/\.percentiles\.\d+\.(quantile|value)$/.test(path)) expect(Number.isInteger(value), path).toBe(true);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) expectIntegers(value[i], `${path}.${i}`);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) expectIntegers(v, `${path}.${k}`);
  }
}

describe('collectStats', () => {
  it('has NSQ shapes, key order and sorting, with consumers and producers', async () => {
    const d = await nsqd();
    const pub = await connect(d, { client_id: 'pub', hostname: 'pubhost', user_agent: 'pubber/1.0' });
    await publish(pub, 'b', ['x']);
    const cons2 = await subscribe(d, 'a', 'c2');
    const cons1 = await subscribe(d, 'a', 'c1', { client_id: 'cons', hostname: 'conshost', user_agent: 'ua/2' });
    await publish(pub, 'a', ['hello', 'world', '!']);
    cons1.write('RDY 2\n');
    const m1 = await readMessage(cons1);
    await readMessage(cons1);
    cons1.write(`FIN ${m1.id}\n`);
    await readMessage(cons1); // the FIN freed a slot of RDY 2: the third comes

    const s = stats(d);
    expect(Object.keys(s)).toEqual(TOP_KEYS);
    expect(s.version).toBe('1.3.0');
    expect(s.health).toBe('OK');
    expect(Number.isInteger(s.start_time)).toBe(true);
    expect(Math.abs(s.start_time - Date.now() / 1000)).toBeLessThan(60);
    expect(Object.keys(s.memory ?? {})).toEqual(MEM_KEYS);
    expectIntegers(s);

    const topics = s.topics ?? [];
    expect(topics.map((t) => t.topic_name)).toEqual(['a', 'b']);
    const [a, b] = topics as [NonNullable<StatsSnapshot['topics']>[0], NonNullable<StatsSnapshot['topics']>[0]];
    expect(Object.keys(a)).toEqual(TOPIC_KEYS);
    expect(a).toMatchObject({ depth: 0, backend_depth: 0, message_count: 3, message_bytes: 11, paused: false });
    expect(a.e2e_processing_latency).toEqual({ count: 0, percentiles: null });
    // A topic without channels keeps its messages (topic depth) and lists no channels as [].
    expect(b).toMatchObject({ channels: [], depth: 1, message_count: 1, message_bytes: 1 });

    expect(a.channels.map((c) => c.channel_name)).toEqual(['c1', 'c2']);
    const [c1, c2] = a.channels as [(typeof a.channels)[0], (typeof a.channels)[0]];
    expect(Object.keys(c1)).toEqual(CHANNEL_KEYS);
    expect(c1).toMatchObject({
      depth: 0,
      backend_depth: 0,
      in_flight_count: 2,
      deferred_count: 0,
      message_count: 3,
      requeue_count: 0,
      timeout_count: 0,
      client_count: 1,
      paused: false,
      e2e_processing_latency: { count: 0, percentiles: null },
      max_attempts: 0,
      dead_letter_topic: '',
      dead_lettered_count: 0,
      dropped_count: 0,
      expired_count: 0,
      replay_count: 0,
    });
    expect(c2).toMatchObject({ depth: 3, in_flight_count: 0, message_count: 3, client_count: 1 });

    const consumer = c1.clients?.[0];
    expect(Object.keys(consumer ?? {})).toEqual([...CLIENT_HEAD, ...CLIENT_TLS]);
    expect(consumer).toEqual({
      client_id: 'cons',
      hostname: 'conshost',
      version: 'V2',
      remote_address: `127.0.0.1:${cons1.socket.localPort}`,
      state: 3,
      ready_count: 2,
      in_flight_count: 2,
      message_count: 3,
      finish_count: 1,
      requeue_count: 0,
      connect_ts: expect.any(Number),
      sample_rate: 0,
      deflate: false,
      snappy: false,
      user_agent: 'ua/2',
      tls: false,
      tls_cipher_suite: '',
      tls_version: '',
      tls_negotiated_protocol: '',
      tls_negotiated_protocol_is_mutual: false,
    });
    expect(Math.abs((consumer?.connect_ts ?? 0) - Date.now() / 1000)).toBeLessThan(60);
    expect(c2.clients?.[0]?.remote_address).toBe(`127.0.0.1:${cons2.socket.localPort}`);

    // Producers: only connections that published, with pub_counts between user_agent and tls.
    expect(s.producers).toHaveLength(1);
    const producer = s.producers?.[0];
    expect(Object.keys(producer ?? {})).toEqual([...CLIENT_HEAD, 'pub_counts', ...CLIENT_TLS]);
    expect(producer).toMatchObject({
      client_id: 'pub',
      hostname: 'pubhost',
      user_agent: 'pubber/1.0',
      state: 0,
      pub_counts: [
        { topic: 'a', count: 3 },
        { topic: 'b', count: 1 },
      ],
    });
  });

  it('applies ?topic= and ?channel= like nsqd', async () => {
    const d = await nsqd();
    const pub = await connect(d);
    await publish(pub, 'a', ['1', '2']);
    await publish(pub, 'b', ['3']);
    await subscribe(d, 'a', 'x');
    await subscribe(d, 'b', 'x');
    await subscribe(d, 'b', 'y');

    const onlyA = stats(d, { topic: 'a' });
    expect(onlyA.topics?.map((t) => t.topic_name)).toEqual(['a']);
    // pub_counts limited to the filtered topic.
    expect(onlyA.producers?.[0]?.pub_counts).toEqual([{ topic: 'a', count: 2 }]);

    // A missing topic: topics null, and nsqd returns before producers.
    const missing = stats(d, { topic: 'nope' });
    expect(missing.topics).toBeNull();
    expect(missing.producers).toBeNull();
    expect(Object.keys(missing)).toEqual(TOP_KEYS);

    // ?channel= alone keeps the topics that have it, each with only that channel.
    const y = stats(d, { channel: 'y' });
    expect(y.topics?.map((t) => [t.topic_name, t.channels.map((c) => c.channel_name)])).toEqual([['b', ['y']]]);
    const x = stats(d, { channel: 'x' });
    expect(x.topics?.map((t) => [t.topic_name, t.channels.map((c) => c.channel_name)])).toEqual([
      ['a', ['x']],
      ['b', ['x']],
    ]);
    // A ?channel= the topic lacks drops the topic: [] not null.
    expect(stats(d, { topic: 'a', channel: 'y' }).topics).toEqual([]);
    expect(stats(d, { topic: 'b', channel: 'y' }).topics?.[0]?.channels).toHaveLength(1);

    // A producer that published only to other topics is still a producer, without pub_counts.
    const other = await connect(d);
    await publish(other, 'c', ['z']);
    const filtered = stats(d, { topic: 'a' }).producers ?? [];
    expect(filtered).toHaveLength(2);
    expect(Object.keys(filtered[1] ?? {})).not.toContain('pub_counts');
  });

  it('include_clients=false nulls clients and producers but keeps client_count; include_mem=false drops memory', async () => {
    const d = await nsqd();
    const pub = await connect(d);
    await publish(pub, 't', ['1']);
    await subscribe(d, 't', 'c');
    const s = stats(d, { includeClients: false, includeMem: false });
    expect(Object.keys(s)).toEqual(['version', 'health', 'start_time', 'topics', 'producers']);
    expect(s.producers).toBeNull();
    const channel = s.topics?.[0]?.channels[0];
    expect(channel?.clients).toBeNull();
    expect(channel?.client_count).toBe(1);
    expect(Object.keys(channel ?? {})).toEqual(CHANNEL_KEYS);
  });

  it('reports empty lists as [] and no publishers as null', async () => {
    const d = await nsqd();
    const empty = stats(d);
    expect(empty.topics).toEqual([]);
    expect(empty.producers).toBeNull();
    await subscribe(d, 't', 'c');
    const s = stats(d);
    expect(s.producers).toBeNull();
    expect(s.topics?.[0]?.channels[0]?.clients).toHaveLength(1);
    // A channel without consumers: clients [] (not null) when clients are included.
    d.nsqd.getTopic('t').getChannel('idle');
    expect(stats(d).topics?.[0]?.channels.find((c) => c.channel_name === 'idle')?.clients).toEqual([]);
  });

  it('counts in-flight, deferred, requeued and timed-out messages', async () => {
    const d = await nsqd({ msgTimeoutMs: 1000 });
    const c = await subscribe(d, 't', 'c');
    const pub = await connect(d);
    await publish(pub, 't', ['1', '2', '3']);
    pub.write(encodeCommand('DPUB', ['t', '60000'], 'later'));
    expect((await pub.readFrame()).data.toString()).toBe('OK');
    c.write('RDY 2\n');
    const m1 = await readMessage(c);
    await readMessage(c);
    c.write(`REQ ${m1.id} 60000\n`);
    const s = await eventually(() => {
      const snap = stats(d);
      expect(snap.topics?.[0]?.channels[0]).toMatchObject({ deferred_count: 2, in_flight_count: 2 });
      return snap;
    });
    const ch = s.topics?.[0]?.channels[0];
    expect(ch).toMatchObject({ depth: 0, in_flight_count: 2, deferred_count: 2, requeue_count: 1, message_count: 4 });
    expect(ch?.clients?.[0]).toMatchObject({ in_flight_count: 2, message_count: 3, requeue_count: 1, ready_count: 2 });
    // Let the two in flight time out (1 s) without reading them.
    c.write('RDY 0\n');
    await eventually(() => expect(stats(d).topics?.[0]?.channels[0]?.timeout_count).toBe(2), { timeoutMs: 5000 });
    expect(stats(d).topics?.[0]?.channels[0]).toMatchObject({ in_flight_count: 0, depth: 2 });
  });

  it('reports paused topics and channels', async () => {
    const d = await nsqd();
    await subscribe(d, 't', 'c');
    await subscribe(d, 't', 'd');
    const topic = d.nsqd.topics.get('t');
    topic?.pause();
    topic?.channels.get('d')?.pause();
    const t = stats(d).topics?.[0];
    expect(t?.paused).toBe(true);
    expect(t?.channels.map((c) => [c.channel_name, c.paused])).toEqual([
      ['c', false],
      ['d', true],
    ]);
  });

  it('reports health NOK with the error', async () => {
    const d = await nsqd();
    (d.nsqd as unknown as { healthError(): string | null }).healthError = () => 'disk full';
    expect(stats(d).health).toBe('NOK - disk full');
  });

  it('reports e2e processing latency per channel and merged per topic', async () => {
    const d = await nsqd({ e2eProcessingLatencyPercentiles: [1, 0.99, 0.5], e2eProcessingLatencyWindowTimeMs: 60_000 });
    const pub = await connect(d);
    const c = await subscribe(d, 't', 'fast');
    await subscribe(d, 't', 'idle');
    await publish(pub, 't', ['1', '2', '3', '4']);
    await publish(pub, 'lonely', ['x']);
    c.write('RDY 10\n');
    for (let i = 0; i < 4; i++) c.write(`FIN ${(await readMessage(c)).id}\n`);
    await eventually(() => expect(stats(d).topics?.[1]?.channels[0]?.e2e_processing_latency.count).toBe(4));

    const s = stats(d);
    const [lonely, t] = s.topics ?? [];
    // No channels: nsqd has no stream to merge and reports null percentiles.
    expect(lonely?.e2e_processing_latency).toEqual({ count: 0, percentiles: null });
    const [fast, idle] = t?.channels ?? [];
    expect(fast?.e2e_processing_latency.count).toBe(4);
    const pcts = fast?.e2e_processing_latency.percentiles ?? [];
    expect(pcts.map((p) => p.quantile)).toEqual([1, 0.99, 0.5]);
    for (const p of pcts) {
      expect(p.value).toBeGreaterThanOrEqual(0);
      expect(p.value).toBeLessThan(60e9);
    }
    expect(idle?.e2e_processing_latency).toEqual({
      count: 0,
      percentiles: [
        { quantile: 1, value: 0 },
        { quantile: 0.99, value: 0 },
        { quantile: 0.5, value: 0 },
      ],
    });
    // The topic merges its channels' samples.
    expect(t?.e2e_processing_latency.count).toBe(4);
    expect(t?.e2e_processing_latency.percentiles?.[0]?.value).toBe(pcts[0]?.value);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('builds a 1,000 topics × 3 channels snapshot quickly (logged, not asserted)', () => {
    for (const percentiles of [[], [1, 0.99, 0.95]]) {
      const broker = new Nsqd({ logLevel: 'error', e2eProcessingLatencyPercentiles: percentiles });
      for (let i = 0; i < 1000; i++) {
        const topic = broker.getTopic(`topic-${String(i).padStart(4, '0')}`);
        for (const name of ['c', 'b', 'a']) {
          const channel = topic.getChannel(name);
          for (let k = 0; k < 20; k++) channel.e2e?.record((k + 1) * 1e6);
        }
      }
      const filter = { includeClients: true, includeMem: true };
      collectStats(broker, filter); // warm-up
      const times: number[] = [];
      let snap: StatsSnapshot | null = null;
      for (let r = 0; r < 15; r++) {
        const start = performance.now();
        snap = collectStats(broker, filter);
        times.push(performance.now() - start);
      }
      times.sort((a, b) => a - b);
      const jsonStart = performance.now();
      const json = JSON.stringify(snap);
      const jsonMs = performance.now() - jsonStart;
      console.log(
        `stats snapshot 1000×3 (e2e percentiles: ${percentiles.length}): min ${times[0]?.toFixed(2)} ms, median ${times[7]?.toFixed(2)} ms; JSON.stringify ${jsonMs.toFixed(2)} ms, ${json.length} bytes`,
      );
      expect(snap?.topics).toHaveLength(1000);
    }
  });
});
