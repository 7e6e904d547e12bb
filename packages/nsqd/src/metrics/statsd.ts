import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { NsqdOptions } from '../options.js';
import { collectStats, type StatsSource } from '../stats/collect.js';
import type { MemStats, StatsSnapshot } from '../stats/types.js';

/**
 * Pushes stats to statsd over UDP every `statsdIntervalMs` (nsq-spec §5.9, NSQ's
 * nsqd/statsd.go): `<prefix><stat>:<value>|c` for counters (the delta since the last push) and
 * `|g` for gauges, each line ending in `\n`, packed into datagrams of at most
 * `statsdUdpPacketSize` bytes. NSQ spreads the datagrams over the interval; this sends them
 * all at once when the interval fires.
 */
export interface StatsdPusher {
  stop(): void;
}

const EPHEMERAL_SUFFIX = '#ephemeral';

/** What the statsd pusher reads of the broker (an `Nsqd`). */
export interface StatsdHost extends StatsSource {
  readonly options: NsqdOptions;
  readonly logger: Logger;
  readonly clock: Clock;
  /** `host:port` the HTTP listener is bound to ('' before start or when disabled). */
  readonly httpAddress: string;
}

export function startStatsd(nsqd: StatsdHost): StatsdPusher {
  const o = nsqd.options;
  if (o.statsdAddress === '') return { stop() {} };
  const target = statsdTarget(o.statsdAddress);
  const counters = new StatsdCounters();
  let stopped = false;
  let busy = false;
  let socket: Promise<Socket> | null = null;

  const connect = (): Promise<Socket> => {
    socket ??= openSocket(target.host, target.port, (err) => {
      nsqd.logger.warn(`STATSD: socket error - ${err.message}`);
    }).catch((err: unknown) => {
      socket = null;
      throw err;
    });
    return socket;
  };

  const push = (s: Socket): void => {
    nsqd.logger.info(`STATSD: pushing stats to ${o.statsdAddress}`);
    const snapshot = collectStats(nsqd, { includeClients: false, includeMem: o.statsdMemStats });
    const lines = counters.lines(snapshot, statsdPrefix(nsqd), o.statsdExcludeEphemeral);
    for (const packet of packStatsdLines(lines, o.statsdUdpPacketSize)) {
      // Delivery is best effort, as in NSQ (a refused datagram surfaces here, not as an event).
      s.send(packet, (err) => {
        if (err !== null && err !== undefined) nsqd.logger.debug(`STATSD: send failed - ${err.message}`);
      });
    }
  };

  const tick = (): void => {
    if (stopped || busy) return;
    busy = true;
    connect()
      .then(
        (s) => {
          if (!stopped) push(s);
        },
        (err: unknown) => {
          // Like NSQ: log, skip this push; counters keep their base, so the next delta covers both.
          const why = err instanceof Error ? err.message : String(err);
          nsqd.logger.error(`failed to create UDP socket to statsd(${o.statsdAddress}) - ${why}`);
        },
      )
      .finally(() => {
        busy = false;
      });
  };

  const timer = nsqd.clock.setTimer(() => {
    timer.refresh();
    tick();
  }, o.statsdIntervalMs);

  return {
    stop() {
      if (stopped) return;
      stopped = true;
      nsqd.clock.clearTimer(timer);
      socket?.then(
        (s) => s.close(),
        () => undefined,
      );
      socket = null;
    },
  };
}

// ---- lines ----

/** Counters by statsd stat name (the last push's values, for the deltas). */
type Counts = Map<string, number>;

interface TopicCounts {
  counts: Counts;
  channels: Map<string, Counts>;
}

/** The delivery policies' counters (nsq-ts extensions), pushed as counters under their /stats names. */
const POLICY_TOPIC_COUNTERS = ['rejected_count', 'dropped_count', 'expired_count', 'redriven_count'] as const;
const POLICY_CHANNEL_COUNTERS = ['dead_lettered_count', 'dropped_count', 'expired_count', 'replay_count'] as const;

/**
 * Renders a snapshot as statsd lines, remembering the counters it reported so the next call
 * sends deltas. A topic or channel missing from the last push counts from 0 (NSQ compares
 * against a zero value); a counter that went down (the topic was deleted and recreated) is
 * reported from 0 rather than as a negative delta.
 */
export class StatsdCounters {
  private topics = new Map<string, TopicCounts>();
  private gcRuns = 0;

  lines(snapshot: StatsSnapshot, prefix: string, excludeEphemeral: boolean): string[] {
    const out: string[] = [];
    const next = new Map<string, TopicCounts>();
    const counter = (stat: string, name: string, now: number, last: Counts | undefined, counts: Counts) => {
      counts.set(name, now);
      out.push(`${prefix}${stat}.${name}:${delta(now, last?.get(name) ?? 0)}|c`);
    };
    const gauge = (stat: string, value: number) => {
      out.push(`${prefix}${stat}:${Math.trunc(value)}|g`);
    };

    for (const t of snapshot.topics ?? []) {
      if (excludeEphemeral && t.topic_name.endsWith(EPHEMERAL_SUFFIX)) continue;
      const last = this.topics.get(t.topic_name);
      const counts: TopicCounts = { counts: new Map(), channels: new Map() };
      next.set(t.topic_name, counts);

      const topic = `topic.${t.topic_name}`;
      counter(topic, 'message_count', t.message_count, last?.counts, counts.counts);
      counter(topic, 'message_bytes', t.message_bytes, last?.counts, counts.counts);
      gauge(`${topic}.depth`, t.depth);
      gauge(`${topic}.backend_depth`, t.backend_depth);
      for (const p of t.e2e_processing_latency.percentiles ?? []) {
        gauge(`${topic}.e2e_processing_latency_${formatPercent(p.quantile)}`, p.value);
      }
      // nsq-ts extensions after NSQ's lines.
      for (const name of POLICY_TOPIC_COUNTERS) counter(topic, name, t[name] ?? 0, last?.counts, counts.counts);

      for (const c of t.channels) {
        if (excludeEphemeral && c.channel_name.endsWith(EPHEMERAL_SUFFIX)) continue;
        const lastC = last?.channels.get(c.channel_name);
        const countsC: Counts = new Map();
        counts.channels.set(c.channel_name, countsC);
        const channel = `${topic}.channel.${c.channel_name}`;
        counter(channel, 'message_count', c.message_count, lastC, countsC);
        gauge(`${channel}.depth`, c.depth);
        gauge(`${channel}.backend_depth`, c.backend_depth);
        gauge(`${channel}.in_flight_count`, c.in_flight_count);
        gauge(`${channel}.deferred_count`, c.deferred_count);
        counter(channel, 'requeue_count', c.requeue_count, lastC, countsC);
        counter(channel, 'timeout_count', c.timeout_count, lastC, countsC);
        gauge(`${channel}.clients`, c.client_count);
        for (const p of c.e2e_processing_latency.percentiles ?? []) {
          gauge(`${channel}.e2e_processing_latency_${formatPercent(p.quantile)}`, p.value);
        }
        for (const name of POLICY_CHANNEL_COUNTERS) counter(channel, name, c[name] ?? 0, lastC, countsC);
      }
    }
    this.topics = next;

    const mem: MemStats | undefined = snapshot.memory;
    if (mem !== undefined) {
      gauge('mem.heap_objects', mem.heap_objects);
      gauge('mem.heap_idle_bytes', mem.heap_idle_bytes);
      gauge('mem.heap_in_use_bytes', mem.heap_in_use_bytes);
      gauge('mem.heap_released_bytes', mem.heap_released_bytes);
      gauge('mem.gc_pause_usec_100', mem.gc_pause_usec_100);
      gauge('mem.gc_pause_usec_99', mem.gc_pause_usec_99);
      gauge('mem.gc_pause_usec_95', mem.gc_pause_usec_95);
      gauge('mem.next_gc_bytes', mem.next_gc_bytes);
      out.push(`${prefix}mem.gc_runs:${delta(mem.gc_total_runs, this.gcRuns)}|c`);
      this.gcRuns = mem.gc_total_runs;
    }
    return out;
  }
}

function delta(now: number, last: number): number {
  return now >= last ? now - last : now;
}

/**
 * Go's `%.0f` of `quantile*100`, as NSQ names e2e stats (0.99 → "99", 0.999 → "100"): the
 * nearest integer, exact halves to even.
 */
export function formatPercent(quantile: number): string {
  const x = quantile * 100;
  const floor = Math.floor(x);
  const frac = x - floor;
  const n = frac > 0.5 || (frac === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  return String(n);
}

/**
 * Packs lines into datagrams of at most `maxBytes`, as NSQ's boundary-buffered writer does:
 * each line is written with its `\n`; a line that does not fit in the current datagram starts
 * the next one; a line longer than `maxBytes` goes out alone.
 */
export function packStatsdLines(lines: readonly string[], maxBytes: number): Buffer[] {
  const packets: Buffer[] = [];
  let current: string[] = [];
  let size = 0;
  for (const line of lines) {
    const entry = `${line}\n`;
    const bytes = Buffer.byteLength(entry);
    if (size > 0 && size + bytes > maxBytes) {
      packets.push(Buffer.from(current.join('')));
      current = [];
      size = 0;
    }
    current.push(entry);
    size += bytes;
    if (size >= maxBytes) {
      packets.push(Buffer.from(current.join('')));
      current = [];
      size = 0;
    }
  }
  if (size > 0) packets.push(Buffer.from(current.join('')));
  return packets;
}

// ---- prefix and address ----

/**
 * The statsd prefix (nsq-spec §5.9): `%s` becomes `<broadcast_address>:<broadcast_http_port>`
 * (host:port joined as Go's net.JoinHostPort) with `.` and `:` turned into `_`, and a `.` is
 * appended unless the prefix already ends in one. The port is --broadcast-http-port when set,
 * else the port the HTTP listener is bound to.
 */
export function statsdPrefix(nsqd: StatsdHost): string {
  const o = nsqd.options;
  const port = o.broadcastHttpPort > 0 ? String(o.broadcastHttpPort) : portOf(nsqd.httpAddress || o.httpAddress);
  return formatStatsdPrefix(o.statsdPrefix, o.broadcastAddress, port);
}

export function formatStatsdPrefix(template: string, broadcastAddress: string, httpPort: string): string {
  if (template === '') return '';
  const joined = broadcastAddress.includes(':')
    ? `[${broadcastAddress}]:${httpPort}`
    : `${broadcastAddress}:${httpPort}`;
  const hostKey = joined.replaceAll('.', '_').replaceAll(':', '_');
  const prefix = template.replaceAll('%s', hostKey);
  return prefix.endsWith('.') ? prefix : `${prefix}.`;
}

function portOf(address: string): string {
  const colon = address.lastIndexOf(':');
  return colon < 0 ? '' : address.slice(colon + 1);
}

/**
 * `host:port` of the statsd daemon. As with Go's net.Dial, an empty or unspecified host means
 * this machine.
 */
function statsdTarget(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw new Error(`statsd address ${JSON.stringify(address)} is not host:port`);
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`statsd address ${JSON.stringify(address)} has an invalid port`);
  }
  return { host, port };
}

/** A UDP socket connected to the statsd daemon, so it only ever sends there; unref'd. */
async function openSocket(host: string, port: number, onError: (err: Error) => void): Promise<Socket> {
  const { address, family } = await lookup(host);
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  socket.unref();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    socket.close();
    throw err;
  });
  socket.on('error', onError);
  return socket;
}
