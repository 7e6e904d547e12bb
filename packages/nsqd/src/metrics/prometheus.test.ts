import { decodeMessage, encodeCommand, FrameType } from '@nsq-ts/protocol';
import { eventually, RawClient, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import type { Nsqd } from '../nsqd.js';
import type { NsqdOptions } from '../options.js';
import { collectStats } from '../stats/collect.js';
import type { StatsSnapshot } from '../stats/types.js';
import { createMetrics, type NsqdMetrics } from './prometheus.js';

// ---- a strict reader of the Prometheus text format (0.0.4) ----

interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/;

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN' || text === 'Nan') return Number.NaN;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`bad sample value ${text}`);
  return n;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest !== '') {
    const m = LABEL.exec(rest);
    if (m === null) throw new Error(`bad labels {${text}}`);
    const [whole, key, raw] = m as unknown as [string, string, string];
    if (key in labels) throw new Error(`duplicate label ${key} in {${text}}`);
    labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(whole.length);
  }
  return labels;
}

/** Samples a family of `type` may carry: its own name, or the summary/histogram suffixes. */
function belongsTo(sample: string, family: PromFamily): boolean {
  if (sample === family.name) return family.type !== 'histogram';
  const suffixes =
    family.type === 'histogram' ? ['_bucket', '_sum', '_count'] : family.type === 'summary' ? ['_sum', '_count'] : [];
  return suffixes.some((s) => sample === family.name + s);
}

/** Parses an exposition, failing on anything malformed, orphaned or duplicated. */
function parseExposition(text: string): Map<string, PromFamily> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, PromFamily>();
  const seen = new Set<string>();
  let current: PromFamily | null = null;
  let pendingHelp: { name: string; help: string } | null = null;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      const [, name, help] = /^# HELP (\S+) (.*)$/.exec(line) ?? [];
      if (name === undefined) throw new Error(`bad HELP line ${line}`);
      pendingHelp = { name, help: help ?? '' };
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, name, type] = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? [];
      if (name === undefined || type === undefined) throw new Error(`bad TYPE line ${line}`);
      if (families.has(name)) throw new Error(`family ${name} declared twice`);
      current = { name, type, help: pendingHelp?.name === name ? pendingHelp.help : '', samples: [] };
      families.set(name, current);
      pendingHelp = null;
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (m === null) throw new Error(`bad sample line ${line}`);
    const [, name, labelText, valueText] = m as unknown as [string, string, string | undefined, string];
    if (current === null || !belongsTo(name, current)) throw new Error(`sample ${name} outside its family`);
    const key = `${name}{${labelText ?? ''}}`;
    if (seen.has(key)) throw new Error(`duplicate series ${key}`);
    seen.add(key);
    current.samples.push({ name, labels: parseLabels(labelText ?? ''), value: parseValue(valueText) });
  }
  return families;
}

function family(families: Map<string, PromFamily>, name: string): PromFamily {
  const f = families.get(name);
  if (f === undefined) throw new Error(`no family ${name}`);
  return f;
}

function labelKey(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const sampleIndex = new WeakMap<PromFamily, Map<string, number>>();

/** The value of the sample of `name` whose labels are exactly `labels`. */
function sampleValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number {
  const f = family(families, name);
  let index = sampleIndex.get(f);
  if (index === undefined) {
    index = new Map();
    for (const s of f.samples) if (s.name === name) index.set(labelKey(s.labels), s.value);
    sampleIndex.set(f, index);
  }
  const value = index.get(labelKey(labels));
  if (value === undefined) throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
  return value;
}

// ---- fixtures ----

const daemons: TestNsqd[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const d of daemons.splice(0)) await d.close();
});

async function nsqd(options: Partial<NsqdOptions> = {}): Promise<TestNsqd> {
  const d = await startNsqd(options);
  daemons.push(d);
  return d;
}

async function client(d: TestNsqd): Promise<RawClient> {
  const c = await RawClient.connect(d.tcpAddress);
  clients.push(c);
  return c;
}

async function okFrame(c: RawClient): Promise<void> {
  const frame = await c.readFrame();
  expect(frame.data.toString()).toBe('OK');
}

async function publisher(d: TestNsqd, topic: string, bodies: string[]): Promise<RawClient> {
  const c = await client(d);
  for (const b of bodies) c.write(encodeCommand('PUB', [topic], b));
  for (const _ of bodies) await okFrame(c);
  return c;
}

async function subscriber(d: TestNsqd, topic: string, channel: string): Promise<RawClient> {
  const c = await client(d);
  c.write(`SUB ${topic} ${channel}\n`);
  await okFrame(c);
  return c;
}

async function readMessage(c: RawClient) {
  const frame = await c.readFrame();
  expect(frame.type).toBe(FrameType.Message);
  return decodeMessage(frame.data);
}

/** The broker as this source tree's type (test-utils hands out the built package's). */
function broker(d: TestNsqd): Nsqd {
  return d.nsqd as unknown as Nsqd;
}

function stats(d: TestNsqd): StatsSnapshot {
  return collectStats(broker(d), { includeClients: false, includeMem: false });
}

/** The nsq_* part of an exposition (prom-client's process metrics move between calls). */
function nsqLines(text: string): string[] {
  const lines = text.split('\n');
  return lines.filter((l) => /^(# (HELP|TYPE) )?nsq_/.test(l));
}

async function scrape(m: NsqdMetrics): Promise<Map<string, PromFamily>> {
  return parseExposition(await m.render());
}

const TOPIC_GAUGES = ['nsq_topic_depth', 'nsq_topic_backend_depth', 'nsq_topic_paused'];
const TOPIC_COUNTERS = ['nsq_topic_messages_total', 'nsq_topic_message_bytes_total', 'nsq_topic_corrupt_records_total'];
const CHANNEL_GAUGES = [
  'nsq_channel_depth',
  'nsq_channel_backend_depth',
  'nsq_channel_in_flight',
  'nsq_channel_deferred',
  'nsq_channel_clients',
  'nsq_channel_paused',
];
const CHANNEL_COUNTERS = ['nsq_channel_messages_total', 'nsq_channel_requeued_total', 'nsq_channel_timed_out_total'];

/** Every topic and channel number of the exposition equals the snapshot's. */
function expectAgreement(families: Map<string, PromFamily>, snapshot: StatsSnapshot): void {
  const topics = snapshot.topics ?? [];
  for (const name of [...TOPIC_GAUGES, ...TOPIC_COUNTERS]) {
    expect(family(families, name).samples).toHaveLength(topics.length);
  }
  const channelCount = topics.reduce((n, t) => n + t.channels.length, 0);
  for (const name of [...CHANNEL_GAUGES, ...CHANNEL_COUNTERS]) {
    expect(family(families, name).samples).toHaveLength(channelCount);
  }
  for (const t of topics) {
    const tl = { topic: t.topic_name };
    expect(sampleValue(families, 'nsq_topic_depth', tl)).toBe(t.depth);
    expect(sampleValue(families, 'nsq_topic_backend_depth', tl)).toBe(t.backend_depth);
    expect(sampleValue(families, 'nsq_topic_paused', tl)).toBe(t.paused ? 1 : 0);
    expect(sampleValue(families, 'nsq_topic_messages_total', tl)).toBe(t.message_count);
    expect(sampleValue(families, 'nsq_topic_message_bytes_total', tl)).toBe(t.message_bytes);
    expect(sampleValue(families, 'nsq_topic_corrupt_records_total', tl)).toBe(t.corrupt_records);
    for (const c of t.channels) {
      const cl = { topic: t.topic_name, channel: c.channel_name };
      expect(sampleValue(families, 'nsq_channel_depth', cl)).toBe(c.depth);
      expect(sampleValue(families, 'nsq_channel_backend_depth', cl)).toBe(c.backend_depth);
      expect(sampleValue(families, 'nsq_channel_in_flight', cl)).toBe(c.in_flight_count);
      expect(sampleValue(families, 'nsq_channel_deferred', cl)).toBe(c.deferred_count);
      expect(sampleValue(families, 'nsq_channel_clients', cl)).toBe(c.client_count);
      expect(sampleValue(families, 'nsq_channel_paused', cl)).toBe(c.paused ? 1 : 0);
      expect(sampleValue(families, 'nsq_channel_messages_total', cl)).toBe(c.message_count);
      expect(sampleValue(families, 'nsq_channel_requeued_total', cl)).toBe(c.requeue_count);
      expect(sampleValue(families, 'nsq_channel_timed_out_total', cl)).toBe(c.timeout_count);
    }
  }
}

// ---- tests ----

describe('Prometheus /metrics exposition', () => {
  it('declares every family with its TYPE and the topic/channel labels', async () => {
    const d = await nsqd();
    await publisher(d, 'orders', ['a']);
    await subscriber(d, 'orders', 'audit');
    const families = await scrape(createMetrics(broker(d)));

    for (const name of [...TOPIC_GAUGES, ...CHANNEL_GAUGES, 'nsq_up', 'nsq_info', 'nsq_clients', 'nsq_producers']) {
      expect(family(families, name).type, name).toBe('gauge');
    }
    for (const name of [...TOPIC_COUNTERS, ...CHANNEL_COUNTERS]) {
      expect(family(families, name).type, name).toBe('counter');
      expect(name.endsWith('_total')).toBe(true);
    }
    for (const name of [...TOPIC_GAUGES, ...TOPIC_COUNTERS]) {
      expect(family(families, name).samples.map((s) => s.labels)).toEqual([{ topic: 'orders' }]);
    }
    for (const name of [...CHANNEL_GAUGES, ...CHANNEL_COUNTERS]) {
      expect(family(families, name).samples.map((s) => s.labels)).toEqual([{ topic: 'orders', channel: 'audit' }]);
    }
    for (const f of families.values()) expect(f.help, f.name).not.toBe('');
    expect(sampleValue(families, 'nsq_up')).toBe(1);
    expect(sampleValue(families, 'nsq_info', { version: '1.3.0' })).toBe(1);
    // prom-client's process metrics live in the same registry.
    expect(family(families, 'process_cpu_user_seconds_total').type).toBe('counter');
    expect(family(families, 'process_resident_memory_bytes').type).toBe('gauge');
    expect(families.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
    expect(families.has('nodejs_heap_size_used_bytes')).toBe(true);
  });

  it('agrees with collectStats for a broker with real publishers and consumers', async () => {
    const d = await nsqd({ msgTimeoutMs: 2_000 });
    const pub = await publisher(d, 'orders', ['one', 'two', 'three', 'four']);
    await client(d); // connected, never publishes
    // The first channel takes the backlog (one..four); the second starts at the end.
    const consumer = await subscriber(d, 'orders', 'billing');
    await subscriber(d, 'orders', 'audit');
    consumer.write('RDY 3\n');
    const first = await readMessage(consumer);
    const second = await readMessage(consumer);
    await readMessage(consumer);
    consumer.write(`FIN ${first.id}\nREQ ${second.id} 60000\n`);
    pub.write(encodeCommand('PUB', ['orders'], 'five'));
    await okFrame(pub);
    d.nsqd.getTopic('paused').pause();
    const billing = () =>
      stats(d)
        .topics?.find((t) => t.topic_name === 'orders')
        ?.channels.find((c) => c.channel_name === 'billing');
    // three, four and five in flight (RDY 3), two deferred by the REQ.
    await eventually(() =>
      expect(billing()).toMatchObject({ in_flight_count: 3, requeue_count: 1, deferred_count: 1 }),
    );

    const m = createMetrics(broker(d));
    const families = await scrape(m);
    expectAgreement(families, stats(d));
    expect(sampleValue(families, 'nsq_topic_messages_total', { topic: 'orders' })).toBe(5);
    expect(sampleValue(families, 'nsq_topic_message_bytes_total', { topic: 'orders' })).toBe(19);
    expect(sampleValue(families, 'nsq_channel_messages_total', { topic: 'orders', channel: 'audit' })).toBe(1);
    expect(sampleValue(families, 'nsq_channel_in_flight', { topic: 'orders', channel: 'billing' })).toBe(3);
    expect(sampleValue(families, 'nsq_channel_clients', { topic: 'orders', channel: 'audit' })).toBe(1);
    expect(sampleValue(families, 'nsq_topic_paused', { topic: 'paused' })).toBe(1);
    // Connections: the publisher, the idle connection and two consumers.
    expect(sampleValue(families, 'nsq_clients')).toBe(4);
    expect(sampleValue(families, 'nsq_producers')).toBe(1);

    // Messages left in flight time out; the next scrape counts them.
    await eventually(() => expect(billing()?.timeout_count).toBeGreaterThan(0), { timeoutMs: 10_000 });
    const later = await scrape(m);
    expectAgreement(later, stats(d));
    expect(sampleValue(later, 'nsq_channel_timed_out_total', { topic: 'orders', channel: 'billing' })).toBeGreaterThan(
      0,
    );
  });

  it('drops a deleted topic and its channels from the next scrape', async () => {
    const d = await nsqd();
    await publisher(d, 'keep', ['x']);
    await publisher(d, 'gone', ['y']);
    d.nsqd.getTopic('gone').getChannel('c1');
    d.nsqd.getTopic('keep').getChannel('c1');
    const m = createMetrics(broker(d));

    const before = await scrape(m);
    expect(family(before, 'nsq_topic_depth').samples.map((s) => s.labels.topic)).toEqual(['gone', 'keep']);
    expect(d.nsqd.deleteTopic('gone')).toBe(true);

    const after = await scrape(m);
    for (const f of after.values()) {
      for (const s of f.samples) expect(s.labels.topic, `${s.name} still has topic gone`).not.toBe('gone');
    }
    expect(family(after, 'nsq_channel_depth').samples.map((s) => s.labels)).toEqual([{ topic: 'keep', channel: 'c1' }]);
    expectAgreement(after, stats(d));
  });

  it('takes a fresh snapshot on every scrape', async () => {
    const d = await nsqd();
    const pub = await publisher(d, 't', ['a']);
    const m = createMetrics(broker(d));
    expect(sampleValue(await scrape(m), 'nsq_topic_messages_total', { topic: 't' })).toBe(1);
    pub.write(encodeCommand('PUB', ['t'], 'b'));
    await okFrame(pub);
    expect(sampleValue(await scrape(m), 'nsq_topic_messages_total', { topic: 't' })).toBe(2);
    // Two scrapes started together share one snapshot and agree.
    const [a, b] = await Promise.all([m.render(), m.render()]);
    expect(nsqLines(a)).toEqual(nsqLines(b));
  });

  it("renders the same nsq families as prom-client's own Registry.metrics()", async () => {
    const d = await nsqd({ e2eProcessingLatencyPercentiles: [0.5, 0.999] });
    await publisher(d, 'a', ['x', 'y']);
    await subscriber(d, 'a', 'c1');
    await subscriber(d, 'a', 'c2#ephemeral');
    await publisher(d, 'b', ['z']);
    const m = createMetrics(broker(d));
    const ours = await m.render();
    const theirs = await m.registry.metrics();
    expect(nsqLines(ours).length).toBeGreaterThan(40);
    expect(nsqLines(ours)).toEqual(nsqLines(theirs));
    parseExposition(theirs);
    const json = await m.registry.getMetricsAsJSON();
    const depth = json.find((f) => f.name === 'nsq_channel_depth');
    expect(depth?.values.map((v) => v.labels)).toEqual([
      { topic: 'a', channel: 'c1' },
      { topic: 'a', channel: 'c2#ephemeral' },
    ]);
  });

  it('gives two brokers in one process independent registries', async () => {
    const d1 = await nsqd();
    const d2 = await nsqd();
    await publisher(d1, 'only_one', ['a', 'b']);
    await publisher(d2, 'only_two', ['c']);
    const m1 = createMetrics(broker(d1));
    const m2 = createMetrics(broker(d2));
    expect(m1.registry).not.toBe(m2.registry);

    const f1 = await scrape(m1);
    const f2 = await scrape(m2);
    expect(family(f1, 'nsq_topic_messages_total').samples.map((s) => [s.labels.topic, s.value])).toEqual([
      ['only_one', 2],
    ]);
    expect(family(f2, 'nsq_topic_messages_total').samples.map((s) => [s.labels.topic, s.value])).toEqual([
      ['only_two', 1],
    ]);
    // Both carry the process metrics without clashing with each other or the global registry.
    expect(f1.has('process_cpu_user_seconds_total')).toBe(true);
    expect(f2.has('process_cpu_user_seconds_total')).toBe(true);
    expect(m1.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('exposes e2e latency quantiles in seconds when percentiles are configured', async () => {
    const d = await nsqd({ e2eProcessingLatencyPercentiles: [0.5, 0.99] });
    await publisher(d, 'lat', ['a', 'b', 'c']);
    const c = await subscriber(d, 'lat', 'ch');
    c.write('RDY 3\n');
    for (let i = 0; i < 3; i++) c.write(`FIN ${(await readMessage(c)).id}\n`);
    await eventually(() => expect(stats(d).topics?.[0]?.channels[0]?.e2e_processing_latency.count).toBe(3));

    const m = createMetrics(broker(d));
    const families = await scrape(m);
    const snapshot = stats(d);
    const topic = snapshot.topics?.[0];
    const channel = topic?.channels[0];
    for (const [name, e2e, labels] of [
      ['nsq_topic_e2e_processing_latency_seconds', topic?.e2e_processing_latency, { topic: 'lat' }],
      ['nsq_channel_e2e_processing_latency_seconds', channel?.e2e_processing_latency, { topic: 'lat', channel: 'ch' }],
    ] as const) {
      expect(family(families, name).type).toBe('gauge');
      expect(family(families, `${name}_count`).type).toBe('gauge');
      expect(sampleValue(families, `${name}_count`, labels)).toBe(e2e?.count);
      expect(family(families, name).samples.map((s) => s.labels.quantile)).toEqual(['0.5', '0.99']);
      for (const p of e2e?.percentiles ?? []) {
        const seconds = sampleValue(families, name, { ...labels, quantile: String(p.quantile) });
        expect(seconds).toBeCloseTo(p.value / 1e9, 12);
        expect(seconds).toBeGreaterThan(0);
        expect(seconds).toBeLessThan(60);
      }
    }
  });

  it('has no e2e series when no percentile is configured', async () => {
    const d = await nsqd();
    await publisher(d, 't', ['a']);
    d.nsqd.getTopic('t').getChannel('c');
    const families = await scrape(createMetrics(broker(d)));
    expect(family(families, 'nsq_topic_e2e_processing_latency_seconds').samples).toEqual([]);
    expect(family(families, 'nsq_channel_e2e_processing_latency_seconds_count').samples).toEqual([]);
  });

  it('renders 1,000 topics × 3 channels as one valid exposition', async () => {
    const d = await nsqd({ e2eProcessingLatencyPercentiles: [0.99] });
    for (let i = 0; i < 1_000; i++) {
      const topic = d.nsqd.getTopic(`topic_${String(i).padStart(4, '0')}`);
      for (const c of ['a', 'b', 'c']) topic.getChannel(c);
      topic.publish(Buffer.from('hello'));
    }
    const m = createMetrics(broker(d));
    await m.render();
    const families = await scrape(m);
    expect(family(families, 'nsq_topic_depth').samples).toHaveLength(1_000);
    expect(family(families, 'nsq_channel_depth').samples).toHaveLength(3_000);
    expect(family(families, 'nsq_channel_e2e_processing_latency_seconds').samples).toHaveLength(3_000);
    expectAgreement(families, stats(d));
  });
});

describe('Prometheus nsq_ha_* families', () => {
  /** A real nsqd whose GET /ha status is `status` (a real group's: test/replication-ops.test.ts). */
  function member(d: TestNsqd, status: () => Record<string, unknown>): Nsqd {
    const n = broker(d);
    return Object.assign(Object.create(n) as Nsqd, { haStatus: status });
  }

  it('are absent on an nsqd outside a group', async () => {
    const families = await scrape(createMetrics(broker(await nsqd())));
    expect([...families.keys()].filter((n) => n.startsWith('nsq_ha_'))).toEqual([]);
  });

  it("show a leader's role, epoch, in-sync set and each follower's lag", async () => {
    const d = await nsqd();
    let lagMs = 40;
    const m = createMetrics(
      member(d, () => ({
        member_id: 'a',
        role: 'leader',
        epoch: 3,
        members: ['a', 'b', 'c'],
        in_sync: ['a', 'b'],
        position: { seq: 120, epoch: 3 },
        followers: [
          { member_id: 'b', connected: true, in_sync: true, acked_seq: 119, lag_batches: 1, lag_ms: lagMs },
          { member_id: 'c', connected: false, in_sync: false, acked_seq: 0, lag_batches: 120, lag_ms: 9000 },
        ],
      })),
    );
    let families = await scrape(m);
    expect(family(families, 'nsq_ha_leader').type).toBe('gauge');
    expect(sampleValue(families, 'nsq_ha_leader', { member: 'a' })).toBe(1);
    expect(sampleValue(families, 'nsq_ha_epoch')).toBe(3);
    expect(sampleValue(families, 'nsq_ha_members')).toBe(3);
    expect(sampleValue(families, 'nsq_ha_insync_members')).toBe(2);
    expect(sampleValue(families, 'nsq_ha_position_seq')).toBe(120);
    expect(sampleValue(families, 'nsq_ha_follower_lag_batches', { member: 'b' })).toBe(1);
    expect(sampleValue(families, 'nsq_ha_follower_lag_batches', { member: 'c' })).toBe(120);
    expect(sampleValue(families, 'nsq_ha_follower_lag_ms', { member: 'b' })).toBe(40);
    expect(sampleValue(families, 'nsq_ha_follower_connected', { member: 'c' })).toBe(0);
    expect(sampleValue(families, 'nsq_ha_follower_in_sync', { member: 'b' })).toBe(1);
    // Each scrape reads the status afresh.
    lagMs = 7;
    families = await scrape(m);
    expect(sampleValue(families, 'nsq_ha_follower_lag_ms', { member: 'b' })).toBe(7);
  });

  it('count the events an operator alerts on, as counters, from the status counters', async () => {
    const d = await nsqd();
    const counters = {
      elections_won: 2,
      leadership_lost: { 'lease-lost': 1, resigned: 0 },
      isr_shrinks: 3,
      isr_expands: 4,
      full_copies_served: 5,
      full_copies_received: 0,
      refused_publishes: 6,
      unanswered_publishes: 7,
      stream_refusals_sent: 8,
      stream_refusals_received: 9,
    };
    const status = { member_id: 'a', role: 'leader', epoch: 3, members: [], in_sync: [], followers: [], counters };
    const families = await scrape(createMetrics(member(d, () => status)));
    for (const name of ['nsq_ha_elections_won_total', 'nsq_ha_leadership_lost_total', 'nsq_ha_full_copies_total']) {
      expect(family(families, name).type).toBe('counter');
    }
    expect(sampleValue(families, 'nsq_ha_elections_won_total')).toBe(2);
    expect(sampleValue(families, 'nsq_ha_leadership_lost_total', { reason: 'lease-lost' })).toBe(1);
    expect(sampleValue(families, 'nsq_ha_leadership_lost_total', { reason: 'resigned' })).toBe(0);
    expect(sampleValue(families, 'nsq_ha_isr_shrinks_total')).toBe(3);
    expect(sampleValue(families, 'nsq_ha_isr_expands_total')).toBe(4);
    expect(sampleValue(families, 'nsq_ha_full_copies_total', { direction: 'served' })).toBe(5);
    expect(sampleValue(families, 'nsq_ha_full_copies_total', { direction: 'received' })).toBe(0);
    expect(sampleValue(families, 'nsq_ha_refused_publishes_total')).toBe(6);
    expect(sampleValue(families, 'nsq_ha_unanswered_publishes_total')).toBe(7);
    expect(sampleValue(families, 'nsq_ha_stream_refusals_total', { direction: 'sent' })).toBe(8);
    expect(sampleValue(families, 'nsq_ha_stream_refusals_total', { direction: 'received' })).toBe(9);
  });

  it("show a follower's own lag, without the leader-only series", async () => {
    const d = await nsqd();
    const m = createMetrics(
      member(d, () => ({
        member_id: 'b',
        role: 'follower',
        epoch: 2,
        members: ['a', 'b'],
        in_sync: ['a', 'b'],
        position: { seq: 10, epoch: 2 },
        connected: true,
        lag_batches: 4,
      })),
    );
    const families = await scrape(m);
    expect(sampleValue(families, 'nsq_ha_leader', { member: 'b' })).toBe(0);
    expect(sampleValue(families, 'nsq_ha_follower_lag_batches', { member: 'b' })).toBe(4);
    expect(family(families, 'nsq_ha_follower_lag_ms').samples).toEqual([]);
    expect(family(families, 'nsq_ha_follower_in_sync').samples).toEqual([]);
  });
});
