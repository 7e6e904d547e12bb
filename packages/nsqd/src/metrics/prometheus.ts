import { collectDefaultMetrics, type Metric, Registry } from 'prom-client';
import { collectStats, type StatsSource } from '../stats/collect.js';
import type { ChannelStats, E2eLatencyStats, StatsSnapshot, TopicStats } from '../stats/types.js';

/**
 * Prometheus exposition of nsqd (DESIGN §7). Hot counters stay plain number fields on topics
 * and channels; a scrape reads them through ONE `collectStats()` snapshot, so /metrics and
 * /stats agree and nothing is computed twice. Each Nsqd owns its Registry (never the global).
 *
 * The nsq_* families are custom collectors, not prom-client Gauges/Counters: a Counter cannot
 * be set to the broker's absolute value, and re-filling Gauges label set by label set costs
 * ~90 ms per scrape at 1,000 topics × 3 channels. A collector hands out the snapshot's values
 * with `# TYPE … counter` where they are monotonic. They sit in the registry like any metric
 * (registry.metrics() and getMetricsAsJSON() see them); render() writes them itself from label
 * text cached per topic and channel, and lets prom-client write the process metrics.
 */
export interface NsqdMetrics {
  readonly registry: Registry;
  /** The Content-Type to serve render()'s text with (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** The whole exposition, from one stats snapshot; same text as registry.metrics(), faster. */
  render(): Promise<string>;
}

/** Sampling period of the event-loop delay histogram behind nodejs_eventloop_lag_* (ms). */
const EVENT_LOOP_MONITORING_PRECISION_MS = 10;

/** What a scrape reads: the stats, and with --ha-group the status GET /ha serves. */
export interface MetricsSource extends StatsSource {
  haStatus(): Readonly<Record<string, unknown>> | null;
}

export function createMetrics(nsqd: MetricsSource): NsqdMetrics {
  const registry = new Registry();
  const scrape = new ScrapeSource(nsqd);
  const add = (name: string, help: string, type: 'gauge' | 'counter', read: Read) => {
    // The registry's runtime contract (name, help, type, aggregator, get, reset) is all a
    // collector needs; prom-client's typings only name its own metric classes.
    registry.registerMetric(new SnapshotFamily(name, help, type, read, scrape) as unknown as Metric);
  };
  const gauge = (name: string, help: string, read: Read) => add(name, help, 'gauge', read);
  const counter = (name: string, help: string, read: Read) => add(name, help, 'counter', read);

  gauge('nsq_up', '1 when nsqd reports itself healthy (/ping OK), 0 otherwise.', (v, emit) => {
    emit(NO_LABELS, v.snapshot.health === 'OK' ? 1 : 0);
  });
  gauge('nsq_info', 'Always 1; the NSQ protocol version spoken is the version label.', (v, emit) => {
    emit(v.info, 1);
  });
  gauge('nsq_clients', 'Open TCP connections.', (v, emit) => emit(NO_LABELS, v.clients));
  gauge('nsq_producers', 'Open TCP connections that have published at least once.', (v, emit) => {
    emit(NO_LABELS, v.producers);
  });

  gauge(
    'nsq_topic_depth',
    'Messages queued in the topic, not yet fanned out to channels.',
    perTopic((t) => t.depth),
  );
  gauge(
    'nsq_topic_backend_depth',
    'Part of nsq_topic_depth held on disk.',
    perTopic((t) => t.backend_depth),
  );
  gauge(
    'nsq_topic_paused',
    '1 when the topic is paused.',
    perTopic((t) => (t.paused ? 1 : 0)),
  );
  counter(
    'nsq_topic_messages_total',
    'Messages published to the topic.',
    perTopic((t) => t.message_count),
  );
  counter(
    'nsq_topic_message_bytes_total',
    'Body bytes published to the topic.',
    perTopic((t) => t.message_bytes),
  );
  counter(
    'nsq_topic_corrupt_records_total',
    "Records in the topic's segment files found corrupt (CRC or length) and skipped since start.",
    perTopic((t) => t.corrupt_records),
  );
  counter(
    'nsq_topic_rejected_total',
    'Publishes refused by max_depth/max_bytes with overflow=reject.',
    perTopic((t) => t.rejected_count ?? 0),
  );
  counter(
    'nsq_topic_dropped_total',
    'Messages dropped by overflow=drop_oldest while the topic had no channel.',
    perTopic((t) => t.dropped_count ?? 0),
  );
  counter(
    'nsq_topic_expired_total',
    "Messages past the topic's message_ttl that its channels did not deliver (one per channel).",
    perTopic((t) => t.expired_count ?? 0),
  );
  counter(
    'nsq_topic_redriven_total',
    'Messages moved out of the topic by POST /topic/redrive.',
    perTopic((t) => t.redriven_count ?? 0),
  );

  gauge(
    'nsq_channel_depth',
    'Messages queued in the channel (not in flight, not deferred).',
    perChannel((c) => c.depth),
  );
  gauge(
    'nsq_channel_backend_depth',
    'Part of nsq_channel_depth held on disk.',
    perChannel((c) => c.backend_depth),
  );
  gauge(
    'nsq_channel_in_flight',
    'Messages sent to consumers, not yet finished.',
    perChannel((c) => c.in_flight_count),
  );
  gauge(
    'nsq_channel_deferred',
    'Messages deferred (DPUB, REQ with a delay).',
    perChannel((c) => c.deferred_count),
  );
  gauge(
    'nsq_channel_clients',
    'Consumers subscribed to the channel.',
    perChannel((c) => c.client_count),
  );
  gauge(
    'nsq_channel_paused',
    '1 when the channel is paused.',
    perChannel((c) => (c.paused ? 1 : 0)),
  );
  counter(
    'nsq_channel_messages_total',
    'Messages delivered into the channel.',
    perChannel((c) => c.message_count),
  );
  counter(
    'nsq_channel_requeued_total',
    'Messages requeued by consumers.',
    perChannel((c) => c.requeue_count),
  );
  counter(
    'nsq_channel_timed_out_total',
    'In-flight messages that timed out.',
    perChannel((c) => c.timeout_count),
  );
  counter(
    'nsq_channel_dead_lettered_total',
    'Messages given up after max_attempts deliveries: moved to the dead-letter topic, or dropped without one.',
    perChannel((c) => c.dead_lettered_count ?? 0),
  );
  counter(
    'nsq_channel_dropped_total',
    "Unread messages dropped by the topic's overflow=drop_oldest.",
    perChannel((c) => c.dropped_count ?? 0),
  );
  counter(
    'nsq_channel_expired_total',
    "Messages past the topic's message_ttl, not delivered: dropped, or moved to the dead-letter topic.",
    perChannel((c) => c.expired_count ?? 0),
  );
  counter(
    'nsq_channel_replays_total',
    'POST /channel/replay calls that moved the channel back.',
    perChannel((c) => c.replay_count ?? 0),
  );

  // Quantiles over a sliding window (nsq-spec §5.8) are not a Prometheus summary, whose _count
  // and _sum are cumulative; hence gauges, present only when percentiles are configured.
  const windowCount = 'Latency samples in the current window (a gauge: the window slides).';
  gauge(
    'nsq_topic_e2e_processing_latency_seconds',
    'End-to-end processing latency quantiles over the window, merged across the channels.',
    (v, emit) => {
      for (const t of v.topics) emitQuantiles(emit, t.stats.e2e_processing_latency, t.labels);
    },
  );
  gauge('nsq_topic_e2e_processing_latency_seconds_count', windowCount, (v, emit) => {
    for (const t of v.topics) emitWindowCount(emit, t.stats.e2e_processing_latency, t.labels);
  });
  gauge(
    'nsq_channel_e2e_processing_latency_seconds',
    'End-to-end processing latency quantiles over the window (publish to FIN).',
    (v, emit) => {
      for (const t of v.topics)
        for (const c of t.channels) emitQuantiles(emit, c.stats.e2e_processing_latency, c.labels);
    },
  );
  gauge('nsq_channel_e2e_processing_latency_seconds_count', windowCount, (v, emit) => {
    for (const t of v.topics)
      for (const c of t.channels) emitWindowCount(emit, c.stats.e2e_processing_latency, c.labels);
  });

  // Replica-group families exist only on a member of a group (--ha-group), read from GET /ha's status.
  if (nsqd.haStatus() !== null) {
    gauge('nsq_ha_leader', '1 while this member leads its replica group, 0 as a follower.', (v, emit) => {
      if (v.ha !== null) emit(v.ha.self, v.ha.leader ? 1 : 0);
    });
    gauge('nsq_ha_epoch', "The group's epoch as this member knows it (it grows at every election).", (v, emit) => {
      if (v.ha !== null) emit(NO_LABELS, v.ha.epoch);
    });
    gauge('nsq_ha_members', 'Members registered in the group (etcd).', (v, emit) => {
      if (v.ha !== null) emit(NO_LABELS, v.ha.members);
    });
    gauge('nsq_ha_insync_members', 'Members in the in-sync set, the leader included.', (v, emit) => {
      if (v.ha !== null) emit(NO_LABELS, v.ha.inSync);
    });
    gauge('nsq_ha_position_seq', "Sequence number of the last batch in this member's data path.", (v, emit) => {
      if (v.ha !== null) emit(NO_LABELS, v.ha.seq);
    });
    gauge(
      'nsq_ha_follower_lag_batches',
      'Batches a follower has not acknowledged (on the leader: each follower; on a follower: its own).',
      (v, emit) => {
        for (const f of v.ha?.followers ?? []) emit(f.member, f.lagBatches);
      },
    );
    gauge(
      'nsq_ha_follower_lag_ms',
      'Age of the oldest batch a follower has not acknowledged, ms (leader only).',
      (v, emit) => {
        for (const f of v.ha?.followers ?? []) if (f.lagMs !== null) emit(f.member, f.lagMs);
      },
    );
    gauge('nsq_ha_follower_connected', "1 while the follower's replication stream is connected.", (v, emit) => {
      for (const f of v.ha?.followers ?? []) emit(f.member, f.connected ? 1 : 0);
    });
    gauge('nsq_ha_follower_in_sync', '1 while the follower is in the in-sync set (leader only).', (v, emit) => {
      for (const f of v.ha?.followers ?? []) if (f.inSync !== null) emit(f.member, f.inSync ? 1 : 0);
    });
    // Events since this member started (GET /ha `counters`): what an operator alerts on.
    const haCounter = (name: string, help: string, key: string) =>
      counter(name, help, (v, emit) => {
        if (v.ha !== null) emit(NO_LABELS, asNumber(v.ha.counters[key]));
      });
    const haLabelled = (name: string, help: string, pairs: readonly (readonly [Series, string])[]) =>
      counter(name, help, (v, emit) => {
        if (v.ha !== null) for (const [labels, key] of pairs) emit(labels, asNumber(v.ha.counters[key]));
      });
    haCounter(
      'nsq_ha_elections_won_total',
      'Elections this member won (each starts a term as leader).',
      'elections_won',
    );
    counter(
      'nsq_ha_leadership_lost_total',
      'Terms this member led that ended, by reason (lease-lost, fence-expired, fenced-write, leader-changed, resigned, closed).',
      (v, emit) => {
        const lost = v.ha?.counters.leadership_lost;
        if (typeof lost !== 'object' || lost === null) return;
        for (const [reason, n] of Object.entries(lost)) emit(scrape.label('reason', reason), asNumber(n));
      },
    );
    haCounter(
      'nsq_ha_isr_shrinks_total',
      'Members this member, as leader, removed from the in-sync set (more than --replication-timeout behind, or gone).',
      'isr_shrinks',
    );
    haCounter(
      'nsq_ha_isr_expands_total',
      'Members this member, as leader, added to the in-sync set (caught up).',
      'isr_expands',
    );
    haLabelled('nsq_ha_full_copies_total', 'Full copies of the data path, served as leader or received as follower.', [
      [series({ direction: 'served' }), 'full_copies_served'],
      [series({ direction: 'received' }), 'full_copies_received'],
    ]);
    haCounter(
      'nsq_ha_refused_publishes_total',
      'Publishes refused (E_PUB_FAILED, HTTP 503) because fewer than --min-insync members are in sync or this member stopped leading.',
      'refused_publishes',
    );
    haCounter(
      'nsq_ha_unanswered_publishes_total',
      'Publishes left unanswered (connection closed, outcome unknown): the fence shut after their flush was shipped.',
      'unanswered_publishes',
    );
    haLabelled(
      'nsq_ha_stream_refusals_total',
      'Replication streams refused at their hello (settings differ, epoch newer, not the leader): sent as leader, received as follower.',
      [
        [series({ direction: 'sent' }), 'stream_refusals_sent'],
        [series({ direction: 'received' }), 'stream_refusals_received'],
      ],
    );
  }

  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });

  return {
    registry,
    contentType: registry.contentType,
    async render() {
      const view = scrape.current();
      // Pieces joined once at the end: appending ~35k lines to one string built a rope that V8
      // then flattened, the largest single cost of a 1,000 x 3 scrape.
      const parts: string[] = [];
      for (const metric of registry.getMetricsAsArray()) {
        const m: unknown = metric;
        // Registry.metrics()'s layout: families separated by a blank line, a final newline.
        if (m instanceof SnapshotFamily) m.appendText(view, parts);
        else parts.push(await registry.getSingleMetricAsString(metric.name), '\n\n');
      }
      return parts.join('').slice(0, -1); // one final newline, as Registry.metrics() ends
    },
  };
}

// ---- one snapshot per scrape ----

/**
 * One label set, as prom-client wants it (`labels`) and as exposition text (`{k="v",…}`, or ''
 * when empty). Kept across scrapes per topic and channel, so label text is built once per
 * series, not once per scrape.
 */
interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly text: string;
  /**
   * `name{labels} ` per family, built on the first scrape and reused: a 1,000 × 3 scrape is
   * ~35k lines, and rebuilding each prefix every time doubled the strings the GC had to chase.
   */
  readonly prefixes: string[];
}

interface LabelEntry {
  readonly series: Series;
  /** The series plus `quantile`, per configured quantile. */
  readonly quantiles: Map<number, Series>;
}

interface TopicLabelEntry extends LabelEntry {
  channels: Map<string, LabelEntry>;
}

interface ChannelRow {
  readonly stats: ChannelStats;
  readonly labels: LabelEntry;
}

interface TopicRow {
  readonly stats: TopicStats;
  readonly labels: LabelEntry;
  readonly channels: ChannelRow[];
}

/** Everything one scrape reads. */
interface ScrapeView {
  readonly snapshot: StatsSnapshot;
  readonly topics: TopicRow[];
  readonly info: Series;
  readonly clients: number;
  readonly producers: number;
  /** With --ha-group: this member's status; else null. */
  readonly ha: HaView | null;
}

/** A follower's replication progress, as the leader (or the follower itself) sees it. */
interface FollowerView {
  readonly member: Series;
  readonly lagBatches: number;
  /** null on a follower, which knows no ack times. */
  readonly lagMs: number | null;
  readonly connected: boolean;
  /** null on a follower (the leader's in-sync set says it). */
  readonly inSync: boolean | null;
}

interface HaView {
  /** `{member="<this member>"}`. */
  readonly self: Series;
  readonly leader: boolean;
  readonly epoch: number;
  readonly members: number;
  readonly inSync: number;
  readonly seq: number;
  readonly followers: FollowerView[];
  /** GET /ha's `counters` block ({} when absent). */
  readonly counters: Readonly<Record<string, unknown>>;
}

function series(labels: Record<string, string>): Series {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return { labels: Object.freeze(labels), text: pairs.length === 0 ? '' : `{${pairs.join(',')}}`, prefixes: [] };
}

/** The text format's label-value escapes: backslash, double quote, newline. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

const NO_LABELS = series({});

class ScrapeSource {
  private readonly nsqd: MetricsSource;
  private view: ScrapeView | null = null;
  /** Label entries of the topics and channels in the last snapshot (deleted ones drop out). */
  private entries = new Map<string, TopicLabelEntry>();
  private info: Series = NO_LABELS;
  /** One-label series by `name=value` (`{member=…}` per member id seen, a counter's reasons), kept like the topic label entries. */
  private labelSeries = new Map<string, Series>();

  constructor(nsqd: MetricsSource) {
    this.nsqd = nsqd;
  }

  /**
   * The current scrape's view. render() takes it once; Registry.metrics() calls every
   * collector's get() in one synchronous pass before it awaits anything, so a view dropped at
   * the next microtask serves exactly one scrape, and the next scrape takes a fresh snapshot.
   */
  current(): ScrapeView {
    if (this.view === null) {
      this.view = this.build();
      queueMicrotask(this.drop);
    }
    return this.view;
  }

  private readonly drop = (): void => {
    this.view = null;
  };

  private build(): ScrapeView {
    const snapshot = collectStats(this.nsqd, { includeClients: false, includeMem: false });
    const previous = this.entries;
    const next = new Map<string, TopicLabelEntry>();
    const topics: TopicRow[] = [];
    for (const t of snapshot.topics ?? []) {
      const topic = t.topic_name;
      const entry: TopicLabelEntry = previous.get(topic) ?? {
        series: series({ topic }),
        quantiles: new Map(),
        channels: new Map(),
      };
      const channelEntries = new Map<string, LabelEntry>();
      const channels: ChannelRow[] = new Array(t.channels.length);
      for (let i = 0; i < t.channels.length; i++) {
        const c = t.channels[i] as ChannelStats;
        const channel = c.channel_name;
        const channelEntry = entry.channels.get(channel) ?? {
          series: series({ topic, channel }),
          quantiles: new Map(),
        };
        channelEntries.set(channel, channelEntry);
        channels[i] = { stats: c, labels: channelEntry };
      }
      entry.channels = channelEntries;
      next.set(topic, entry);
      topics.push({ stats: t, labels: entry, channels });
    }
    this.entries = next;
    if (this.info.labels.version !== snapshot.version) this.info = series({ version: snapshot.version });

    // Connection counts are not in a client-less snapshot; counting them is one pass over the
    // connection set, without allocating (collectStats' producers test: pubCounts non-empty).
    let producers = 0;
    for (const client of this.nsqd.clients) if (client.pubCounts.size > 0) producers++;

    const ha = this.haView();
    return { snapshot, topics, info: this.info, clients: this.nsqd.clients.size, producers, ha };
  }

  private member(id: string): Series {
    return this.label('member', id);
  }

  label(name: string, value: string): Series {
    const key = `${name}=${value}`;
    let s = this.labelSeries.get(key);
    if (s === undefined) {
      s = series({ [name]: value });
      this.labelSeries.set(key, s);
    }
    return s;
  }

  /** GET /ha's status read defensively: it is a JSON-shaped record, not a typed object. */
  private haView(): HaView | null {
    const status = this.nsqd.haStatus();
    if (status === null) return null;
    const self = String(status.member_id ?? '');
    const leader = status.role === 'leader';
    const followers: FollowerView[] = [];
    if (leader) {
      for (const f of asArray(status.followers)) {
        const lag = f as Record<string, unknown>;
        followers.push({
          member: this.member(String(lag.member_id)),
          lagBatches: asNumber(lag.lag_batches),
          lagMs: asNumber(lag.lag_ms),
          connected: lag.connected === true,
          inSync: lag.in_sync === true,
        });
      }
    } else {
      followers.push({
        member: this.member(self),
        lagBatches: asNumber(status.lag_batches),
        lagMs: null,
        connected: status.connected === true,
        inSync: null,
      });
    }
    return {
      self: this.member(self),
      leader,
      epoch: asNumber(status.epoch),
      members: asArray(status.members).length,
      inSync: asArray(status.in_sync).length,
      seq: asNumber((status.position as { seq?: unknown } | undefined)?.seq),
      followers,
      counters:
        typeof status.counters === 'object' && status.counters !== null
          ? (status.counters as Record<string, unknown>)
          : {},
    };
  }
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function asNumber(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

// ---- collectors ----

type Emit = (series: Series, value: number) => void;
type Read = (view: ScrapeView, emit: Emit) => void;

/** A sample value as prom-client prints it (it spells NaN `Nan`; both parse, and nsqd has none). */
function formatValue(value: number): string {
  if (Number.isFinite(value)) return `${value}`;
  return Number.isNaN(value) ? 'NaN' : value > 0 ? '+Inf' : '-Inf';
}

/** What prom-client's Registry formats per value; `sharedLabels` === `labels` lets it cache the text. */
interface RegistryValue {
  value: number;
  labels: Series['labels'];
  sharedLabels: Series['labels'];
}

let nextFamilyId = 0;

class SnapshotFamily {
  /** Index of this family's prefix in each Series' `prefixes`. */
  private readonly id = nextFamilyId++;
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  /** How prom-client's cluster aggregation would combine workers (unused; part of the contract). */
  readonly aggregator = 'sum';
  private readonly header: string;
  private readonly read: Read;
  private readonly source: ScrapeSource;

  constructor(name: string, help: string, type: 'gauge' | 'counter', read: Read, source: ScrapeSource) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.read = read;
    this.source = source;
    this.header = `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`;
  }

  /** Appends the family as exposition text and a blank line, as Registry.metrics() writes it. */
  appendText(view: ScrapeView, parts: string[]): void {
    parts.push(this.header);
    const name = this.name;
    const id = this.id;
    this.read(view, (s, value) => {
      let prefix = s.prefixes[id];
      if (prefix === undefined) {
        prefix = `${name}${s.text} `;
        s.prefixes[id] = prefix;
      }
      parts.push(prefix, formatValue(value), '\n');
    });
    parts.push('\n');
  }

  /** For Registry.metrics() and getMetricsAsJSON(). Synchronous up to the return: see current(). */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: RegistryValue[] }> {
    const values: RegistryValue[] = [];
    this.read(this.source.current(), (s, value) => {
      values.push({ value, labels: s.labels, sharedLabels: s.labels });
    });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** Values come from the broker; there is nothing to reset (Registry.resetMetrics). */
  reset(): void {}
}

function perTopic(value: (t: TopicStats) => number): Read {
  return (v, emit) => {
    for (const t of v.topics) emit(t.labels.series, value(t.stats));
  };
}

function perChannel(value: (c: ChannelStats) => number): Read {
  return (v, emit) => {
    for (const t of v.topics) for (const c of t.channels) emit(c.labels.series, value(c.stats));
  };
}

/** One sample per configured quantile, ns → s; none when no percentile is configured. */
function emitQuantiles(emit: Emit, e2e: E2eLatencyStats, entry: LabelEntry): void {
  if (e2e.percentiles === null) return;
  for (const p of e2e.percentiles) {
    let s = entry.quantiles.get(p.quantile);
    if (s === undefined) {
      s = series({ ...entry.series.labels, quantile: String(p.quantile) });
      entry.quantiles.set(p.quantile, s);
    }
    emit(s, p.value / 1e9);
  }
}

function emitWindowCount(emit: Emit, e2e: E2eLatencyStats, entry: LabelEntry): void {
  if (e2e.percentiles !== null) emit(entry.series, e2e.count);
}
