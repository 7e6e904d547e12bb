import { createSocket, type Socket } from 'node:dgram';
import { encodeCommand } from '@nsq-ts/protocol';
import { eventually, ManualClock, RawClient, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import type { Nsqd } from '../nsqd.js';
import type { NsqdOptions } from '../options.js';
import type { ChannelStats, StatsSnapshot, TopicStats } from '../stats/types.js';
import {
  formatPercent,
  formatStatsdPrefix,
  packStatsdLines,
  StatsdCounters,
  type StatsdPusher,
  startStatsd,
} from './statsd.js';

/** A statsd daemon: a UDP socket on 127.0.0.1:0 that keeps every datagram. */
interface StatsdServer {
  socket: Socket;
  address: string;
  datagrams: Buffer[];
}

const daemons: TestNsqd[] = [];
const clients: RawClient[] = [];
const servers: StatsdServer[] = [];
const pushers: StatsdPusher[] = [];

afterEach(async () => {
  for (const p of pushers.splice(0)) p.stop();
  for (const c of clients.splice(0)) c.close();
  for (const d of daemons.splice(0)) await d.close();
  for (const s of servers.splice(0)) s.socket.close();
});

async function statsdServer(): Promise<StatsdServer> {
  const socket = createSocket('udp4');
  const datagrams: Buffer[] = [];
  socket.on('message', (msg) => datagrams.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const server = { socket, address: `127.0.0.1:${socket.address().port}`, datagrams };
  servers.push(server);
  return server;
}

type StatsdOptions = Pick<
  NsqdOptions,
  | 'statsdAddress'
  | 'statsdIntervalMs'
  | 'statsdMemStats'
  | 'statsdPrefix'
  | 'statsdUdpPacketSize'
  | 'statsdExcludeEphemeral'
>;

/**
 * A broker started with statsd off, then pointed at `server` and pushed by our own pusher:
 * the test owns the only pusher whether or not Nsqd starts one itself.
 */
async function brokerWithStatsd(
  server: StatsdServer,
  statsd: Partial<StatsdOptions> = {},
  options: Partial<NsqdOptions> = {},
  clock?: ManualClock,
): Promise<TestNsqd> {
  const d = await startNsqd({ broadcastAddress: 'test.host', ...options, statsdAddress: '' }, clock);
  daemons.push(d);
  Object.assign(d.nsqd.options, {
    statsdAddress: server.address,
    statsdIntervalMs: 100,
    statsdMemStats: false,
    statsdUdpPacketSize: 65_000,
    ...statsd,
  });
  pushers.push(startStatsd(broker(d)));
  return d;
}

/** The broker as this source tree's type (test-utils hands out the built package's). */
function broker(d: TestNsqd): Nsqd {
  return d.nsqd as unknown as Nsqd;
}

async function client(d: TestNsqd): Promise<RawClient> {
  const c = await RawClient.connect(d.tcpAddress);
  clients.push(c);
  return c;
}

async function publish(c: RawClient, topic: string, bodies: string[]): Promise<void> {
  for (const b of bodies) c.write(encodeCommand('PUB', [topic], b));
  for (const _ of bodies) expect((await c.readFrame()).data.toString()).toBe('OK');
}

async function subscribe(d: TestNsqd, topic: string, channel: string): Promise<RawClient> {
  const c = await client(d);
  c.write(`SUB ${topic} ${channel}\n`);
  expect((await c.readFrame()).data.toString()).toBe('OK');
  return c;
}

function httpPort(d: TestNsqd): string {
  return d.httpAddress.slice(d.httpAddress.lastIndexOf(':') + 1);
}

/** Waits for a datagram after `from` and returns its lines (one push, with a large packet size). */
async function nextPush(server: StatsdServer, from: number): Promise<{ lines: string[]; index: number }> {
  const datagram = await eventually(() => server.datagrams[from] ?? false);
  const text = datagram.toString();
  expect(text.endsWith('\n')).toBe(true);
  return { lines: text.slice(0, -1).split('\n'), index: from + 1 };
}

/** Reads pushes one by one, summing each counter's deltas. */
class Pushes {
  private at = 0;
  readonly sums = new Map<string, number>();
  lines: string[] = [];

  constructor(
    private readonly server: StatsdServer,
    private readonly prefix: string,
  ) {}

  async next(): Promise<string[]> {
    const { lines, index } = await nextPush(this.server, this.at);
    this.at = index;
    this.lines = lines;
    for (const line of lines) {
      const m = /^(.*):(-?\d+)\|c$/.exec(line);
      if (m !== null) this.sums.set(m[1] as string, (this.sums.get(m[1] as string) ?? 0) + Number(m[2]));
    }
    return lines;
  }

  sum(name: string): number | undefined {
    return this.sums.get(`${this.prefix}${name}`);
  }

  /** The value and type of `name` in the last push, e.g. `3|g`. */
  value(name: string): string | undefined {
    return stat(this.lines, this.prefix, name);
  }
}

/** The value of `stat` in `lines`, with its type. */
function stat(lines: string[], prefix: string, name: string): string | undefined {
  const line = lines.find((l) => l.startsWith(`${prefix}${name}:`));
  return line?.slice(prefix.length + name.length + 1);
}

describe('statsd push', () => {
  it('sends topic and channel stats with the host prefix, counters as deltas', async () => {
    const server = await statsdServer();
    const d = await brokerWithStatsd(server);
    const prefix = `nsq.test_host_${httpPort(d)}.`;
    const pushes = new Pushes(server, prefix);
    const pub = await client(d);
    await publish(pub, 'orders', ['a', 'bb', 'ccc']);
    const consumer = await subscribe(d, 'orders', 'billing');
    consumer.write('RDY 1\n');

    // Up to the first push that sees the message in flight, the deltas add up to the totals.
    await eventually(async () => {
      await pushes.next();
      expect(pushes.value('topic.orders.channel.billing.in_flight_count')).toBe('1|g');
    });
    for (const line of pushes.lines) expect(line).toMatch(/^nsq\.test_host_\d+\.[^:]+:-?\d+\|[cg]$/);
    expect(pushes.sum('topic.orders.message_count')).toBe(3);
    expect(pushes.sum('topic.orders.message_bytes')).toBe(6);
    expect(pushes.sum('topic.orders.channel.billing.message_count')).toBe(3);
    expect(pushes.sum('topic.orders.channel.billing.requeue_count')).toBe(0);
    expect(pushes.sum('topic.orders.channel.billing.timeout_count')).toBe(0);
    expect(pushes.value('topic.orders.depth')).toBe('0|g');
    expect(pushes.value('topic.orders.backend_depth')).toBe('0|g');
    expect(pushes.value('topic.orders.channel.billing.depth')).toBe('2|g');
    expect(pushes.value('topic.orders.channel.billing.backend_depth')).toBe('0|g');
    expect(pushes.value('topic.orders.channel.billing.deferred_count')).toBe('0|g');
    expect(pushes.value('topic.orders.channel.billing.clients')).toBe('1|g');
    // No percentiles configured, no memory stats asked for.
    expect(pushes.lines.some((l) => l.includes('e2e_processing_latency'))).toBe(false);
    expect(pushes.lines.some((l) => l.includes('.mem.'))).toBe(false);

    // Nothing new: every counter reports 0.
    await pushes.next();
    expect(pushes.value('topic.orders.message_count')).toBe('0|c');
    expect(pushes.value('topic.orders.channel.billing.message_count')).toBe('0|c');

    // Two more messages: deltas of 2 messages and 5 bytes, however the pushes fall.
    pushes.sums.clear();
    await publish(pub, 'orders', ['dddd', 'e']);
    await eventually(async () => {
      await pushes.next();
      expect(pushes.sum('topic.orders.message_count')).toBe(2);
    });
    expect(pushes.sum('topic.orders.message_bytes')).toBe(5);
    expect(pushes.sum('topic.orders.channel.billing.message_count')).toBe(2);
    expect(pushes.value('topic.orders.channel.billing.depth')).toBe('4|g');
  });

  it('uses --broadcast-http-port for the prefix when set, and a custom prefix', async () => {
    const server = await statsdServer();
    const d = await brokerWithStatsd(server, { statsdPrefix: 'cluster.%s.nsqd' }, { broadcastHttpPort: 9999 });
    d.nsqd.getTopic('t');
    const { lines } = await nextPush(server, 0);
    expect(lines).toContain('cluster.test_host_9999.nsqd.topic.t.message_count:0|c');
  });

  it('packs lines into datagrams no larger than the packet size', async () => {
    const server = await statsdServer();
    const size = 200;
    const d = await brokerWithStatsd(server, { statsdUdpPacketSize: size });
    for (let i = 0; i < 20; i++) d.nsqd.getTopic(`topic_${i}`).getChannel('channel_with_a_long_name');
    const perPush = 20 * 12; // 4 topic lines and 8 channel lines per topic
    await eventually(() => server.datagrams.join('').split('\n').length > perPush);

    const datagrams = server.datagrams.map((b) => b.toString());
    for (const dg of datagrams) {
      expect(Buffer.byteLength(dg)).toBeLessThanOrEqual(size);
      expect(dg.endsWith('\n')).toBe(true);
      for (const line of dg.slice(0, -1).split('\n')) expect(line).toMatch(/^nsq\.[^:\n]+:-?\d+\|[cg]$/);
    }
    expect(datagrams.some((dg) => dg.split('\n').length > 2)).toBe(true);
  });

  it('skips #ephemeral topics and channels with --statsd-exclude-ephemeral', async () => {
    for (const exclude of [true, false]) {
      const server = await statsdServer();
      const d = await brokerWithStatsd(server, { statsdExcludeEphemeral: exclude });
      await subscribe(d, 'temp#ephemeral', 'c');
      await subscribe(d, 'kept', 'live#ephemeral');
      await subscribe(d, 'kept', 'durable');
      const { lines } = await nextPush(server, 0);
      const names = lines.map((l) => l.slice(0, l.indexOf(':')).replace(/^nsq\.test_host_\d+\./, ''));
      expect(names).toContain('topic.kept.channel.durable.depth');
      expect(names.some((n) => n.includes('temp#ephemeral'))).toBe(!exclude);
      expect(names.some((n) => n.includes('live#ephemeral'))).toBe(!exclude);
    }
  });

  it('adds memory stats when asked, gc_runs as a counter', async () => {
    const server = await statsdServer();
    await brokerWithStatsd(server, { statsdMemStats: true });
    const { lines } = await nextPush(server, 0);
    const mem = lines.map((l) => l.replace(/^nsq\.test_host_\d+\./, '')).filter((l) => l.startsWith('mem.'));
    expect(mem.map((l) => l.replace(/:.*\|/, '|'))).toEqual([
      'mem.heap_objects|g',
      'mem.heap_idle_bytes|g',
      'mem.heap_in_use_bytes|g',
      'mem.heap_released_bytes|g',
      'mem.gc_pause_usec_100|g',
      'mem.gc_pause_usec_99|g',
      'mem.gc_pause_usec_95|g',
      'mem.next_gc_bytes|g',
      'mem.gc_runs|c',
    ]);
  });

  it('sends e2e latency percentiles as integer nanosecond gauges', async () => {
    const server = await statsdServer();
    const d = await brokerWithStatsd(server, {}, { e2eProcessingLatencyPercentiles: [0.5, 0.99] });
    const pub = await client(d);
    await publish(pub, 'lat', ['x']);
    const c = await subscribe(d, 'lat', 'ch');
    c.write('RDY 1\n');
    const frame = await c.readFrame();
    c.write(`FIN ${frame.data.toString('latin1', 10, 26)}\n`);
    let at = 0;
    let lines: string[] = [];
    const prefix = `nsq.test_host_${httpPort(d)}.`;
    await eventually(async () => {
      ({ lines, index: at } = await nextPush(server, at));
      expect(stat(lines, prefix, 'topic.lat.channel.ch.e2e_processing_latency_99')).toMatch(/^[1-9]\d*\|g$/);
    });
    expect(stat(lines, prefix, 'topic.lat.e2e_processing_latency_50')).toMatch(/^\d+\|g$/);
    expect(stat(lines, prefix, 'topic.lat.e2e_processing_latency_99')).toMatch(/^\d+\|g$/);
    expect(stat(lines, prefix, 'topic.lat.channel.ch.e2e_processing_latency_50')).toMatch(/^\d+\|g$/);
  });

  it('pushes once per interval of the broker clock, and never after stop()', async () => {
    const server = await statsdServer();
    const clock = new ManualClock();
    const d = await brokerWithStatsd(server, {}, {}, clock);
    d.nsqd.getTopic('t'); // an empty broker (and no memory stats) sends nothing at all
    const idle = clock.pendingTimers - 1;
    clock.advance(100);
    await nextPush(server, 0);
    clock.advance(100);
    await nextPush(server, 1);
    // This tick has fired but not sent yet (the socket is awaited): stop() cancels it too.
    clock.advance(100);
    pushers.pop()?.stop();
    clock.advance(1_000);
    expect(clock.pendingTimers).toBe(idle);
    // Loopback delivers in send order: once a later datagram from elsewhere is in, so is any push.
    const other = createSocket('udp4');
    await new Promise<void>((resolve) =>
      other.send('barrier', server.socket.address().port, '127.0.0.1', () => resolve()),
    );
    other.close();
    await eventually(() => expect(server.datagrams.map(String).at(-1)).toBe('barrier'));
    expect(server.datagrams).toHaveLength(3);
  });

  it('does nothing without a statsd address', async () => {
    const d = await startNsqd({ statsdAddress: '' });
    daemons.push(d);
    startStatsd(broker(d)).stop();
  });
});

describe('statsd formatting', () => {
  it('builds the prefix as nsqd does', () => {
    expect(formatStatsdPrefix('nsq.%s', '10.0.0.1', '4151')).toBe('nsq.10_0_0_1_4151.');
    expect(formatStatsdPrefix('nsq.%s.', 'host.example', '4151')).toBe('nsq.host_example_4151.');
    expect(formatStatsdPrefix('nsq.%s', '::1', '4151')).toBe('nsq.[__1]_4151.');
    expect(formatStatsdPrefix('static', 'h', '1')).toBe('static.');
    expect(formatStatsdPrefix('', 'h', '1')).toBe('');
  });

  it('names percentiles like Go %.0f of quantile × 100', () => {
    expect(formatPercent(0.99)).toBe('99');
    expect(formatPercent(0.5)).toBe('50');
    expect(formatPercent(1)).toBe('100');
    expect(formatPercent(0.999)).toBe('100');
    expect(formatPercent(0.125)).toBe('12'); // exact half: to even
    expect(formatPercent(0.135)).toBe('14');
  });

  it('packs like a boundary-buffered writer', () => {
    expect(packStatsdLines([], 10).map(String)).toEqual([]);
    expect(packStatsdLines(['aaa', 'bbb', 'ccc'], 8).map(String)).toEqual(['aaa\nbbb\n', 'ccc\n']);
    expect(packStatsdLines(['aaa', 'bbb'], 7).map(String)).toEqual(['aaa\n', 'bbb\n']);
    // A line longer than the limit goes alone; the lines around it are not merged across it.
    expect(packStatsdLines(['a', 'long_line_here', 'b', 'c'], 5).map(String)).toEqual([
      'a\n',
      'long_line_here\n',
      'b\nc\n',
    ]);
  });

  /** A snapshot of one topic `t` with the given fields. */
  const oneTopic = (fields: Partial<TopicStats>): StatsSnapshot => ({
    version: '1.3.0',
    health: 'OK',
    start_time: 0,
    producers: null,
    topics: [
      {
        topic_name: 't',
        channels: [],
        depth: 0,
        backend_depth: 0,
        message_count: 0,
        message_bytes: 0,
        corrupt_records: 0,
        paused: false,
        e2e_processing_latency: { count: 0, percentiles: null },
        ...fields,
      },
    ],
  });

  it('reports counter deltas, restarting from 0 when a counter went down', () => {
    const counters = new StatsdCounters();
    const snapshot = (messages: number) => oneTopic({ message_count: messages, message_bytes: messages * 10 });
    expect(counters.lines(snapshot(5), 'p.', false)).toContain('p.topic.t.message_count:5|c');
    expect(counters.lines(snapshot(8), 'p.', false)).toContain('p.topic.t.message_bytes:30|c');
    expect(counters.lines(snapshot(2), 'p.', false)).toContain('p.topic.t.message_count:2|c');
  });

  it('pushes the delivery policies’ counters as deltas after NSQ’s lines of a topic and a channel', () => {
    const counters = new StatsdCounters();
    const channel = (n: number): ChannelStats => ({
      channel_name: 'c',
      depth: 0,
      backend_depth: 0,
      in_flight_count: 0,
      deferred_count: 0,
      message_count: 0,
      requeue_count: 0,
      timeout_count: 0,
      client_count: 0,
      clients: null,
      paused: false,
      e2e_processing_latency: { count: 0, percentiles: null },
      dead_lettered_count: n,
      dropped_count: 2 * n,
      expired_count: 3 * n,
    });
    const snapshot = (n: number) =>
      oneTopic({ channels: [channel(n)], rejected_count: n, dropped_count: 2 * n, expired_count: 3 * n });
    counters.lines(snapshot(1), 'p.', false);
    const lines = counters.lines(snapshot(5), 'p.', false);
    expect(lines.filter((l) => /(rejected|dropped|expired|dead_lettered|replay|redriven)_count:/.test(l))).toEqual([
      'p.topic.t.rejected_count:4|c',
      'p.topic.t.dropped_count:8|c',
      'p.topic.t.expired_count:12|c',
      'p.topic.t.redriven_count:0|c',
      'p.topic.t.channel.c.dead_lettered_count:4|c',
      'p.topic.t.channel.c.dropped_count:8|c',
      'p.topic.t.channel.c.expired_count:12|c',
      'p.topic.t.channel.c.replay_count:0|c',
    ]);
    // NSQ's lines of the channel come first, unchanged.
    const names = lines.map((l) => l.slice(0, l.indexOf(':')));
    expect(names.indexOf('p.topic.t.channel.c.clients')).toBeLessThan(
      names.indexOf('p.topic.t.channel.c.dead_lettered_count'),
    );
  });
});
