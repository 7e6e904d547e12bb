import { formatGoDuration } from '@nsq-ts/go-compat';
import type { Channel } from '../channel.js';
import type { ClientV2 } from '../tcp/client-v2.js';
import type { Topic } from '../topic.js';
import { goTlsVersion } from '../transport/tls-options.js';
import { VERSION } from '../version.js';
import { E2eProcessingLatency } from './e2e-latency.js';
import { collectMemStats } from './mem-stats.js';
import type {
  ChannelStats,
  ClientStats,
  E2eLatencyStats,
  PubCount,
  StatsFilter,
  StatsSnapshot,
  TopicStats,
} from './types.js';

/** What a stats snapshot reads of the broker (an `Nsqd`). */
export interface StatsSource {
  readonly topics: ReadonlyMap<string, Topic>;
  readonly clients: ReadonlySet<ClientV2>;
  /** Unix seconds the broker started. */
  readonly startTimeS: number;
  /** Why the node is unhealthy (a failing disk), or null. */
  healthError(): string | null;
}

/**
 * One /stats snapshot (nsq-spec §3.3), built the way nsqd's GetStats builds it: topics and
 * channels sorted by name, keys in NSQ's order, `[]` and `null` where nsqd has them.
 * /stats JSON and text, /metrics and statsd all read this.
 */
export function collectStats(nsqd: StatsSource, filter: StatsFilter): StatsSnapshot {
  const topicName = filter.topic ?? '';
  const channelName = filter.channel ?? '';
  const healthError = nsqd.healthError();
  let topics: TopicStats[] | null = null;
  let producers: ClientStats[] | null = null;

  // A ?topic= naming no topic: nsqd returns before it looks at producers too.
  const only = topicName === '' ? undefined : nsqd.topics.get(topicName);
  if (topicName === '' || only !== undefined) {
    const selected = only !== undefined ? [only] : sortedByName(nsqd.topics);
    topics = [];
    for (const topic of selected) {
      let channels: Channel[];
      if (channelName === '') {
        channels = sortedByName(topic.channels);
      } else {
        const channel = topic.channels.get(channelName);
        if (channel === undefined) continue; // a ?channel= a topic lacks drops the topic
        channels = [channel];
      }
      const channelStats: ChannelStats[] = new Array(channels.length);
      for (let i = 0; i < channels.length; i++) {
        channelStats[i] = channelStatsOf(channels[i] as Channel, filter.includeClients, topicName);
      }
      topics.push(topicStatsOf(topic, channelStats));
    }
    if (filter.includeClients) producers = producerStats(nsqd, topicName);
  }

  const health = healthError === null ? 'OK' : `NOK - ${healthError}`;
  // Two literals so that the keys come out in NSQ's order with `memory` present or absent.
  if (filter.includeMem) {
    return { version: VERSION, health, start_time: nsqd.startTimeS, topics, memory: collectMemStats(), producers };
  }
  return { version: VERSION, health, start_time: nsqd.startTimeS, topics, producers };
}

function byName(a: { name: string }, b: { name: string }): number {
  // Byte order like Go's sort: names are ASCII, so UTF-16 order is the same.
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function sortedByName<T extends { name: string }>(map: ReadonlyMap<string, T>): T[] {
  return [...map.values()].sort(byName);
}

function topicStatsOf(topic: Topic, channels: ChannelStats[]): TopicStats {
  return {
    topic_name: topic.name,
    channels,
    depth: topic.depth,
    backend_depth: topic.backendDepth,
    message_count: topic.messageCount,
    message_bytes: topic.messageBytes,
    paused: topic.paused,
    // Over all the topic's channels, whatever ?channel= selected (nsqd does the same).
    e2e_processing_latency: topicE2e(topic),
    corrupt_records: topic.log?.corruptRecords ?? 0,
    max_depth: topic.maxDepth,
    max_bytes: topic.maxBytes,
    overflow: topic.overflow,
    rejected_count: topic.rejectedCount,
    dropped_count: topic.droppedCount,
    message_ttl: formatGoDuration(topic.messageTtlMs),
    expired_count: topic.expiredCount,
    retention: formatGoDuration(topic.retentionMs),
    redriven_count: topic.redrivenCount,
  };
}

function topicE2e(topic: Topic): E2eLatencyStats {
  const streams: E2eProcessingLatency[] = [];
  for (const channel of topic.channels.values()) if (channel.e2e !== null) streams.push(channel.e2e);
  return E2eProcessingLatency.merge(streams);
}

function channelStatsOf(channel: Channel, includeClients: boolean, topicFilter: string): ChannelStats {
  const consumers = channel.consumers;
  let clients: ClientStats[] | null = null;
  if (includeClients) {
    clients = new Array(consumers.length);
    // The TCP connection is the only Consumer there is.
    for (let i = 0; i < consumers.length; i++) clients[i] = clientStatsOf(consumers[i] as ClientV2, topicFilter);
  }
  return {
    channel_name: channel.name,
    depth: channel.depth,
    backend_depth: channel.backendDepth,
    in_flight_count: channel.inFlightCount,
    deferred_count: channel.deferredCount,
    message_count: channel.messageCount,
    requeue_count: channel.requeueCount,
    timeout_count: channel.timeoutCount,
    client_count: consumers.length,
    clients,
    paused: channel.paused,
    e2e_processing_latency: channel.e2e === null ? { count: 0, percentiles: null } : channel.e2e.snapshot(),
    max_attempts: channel.maxAttempts,
    dead_letter_topic: channel.deadLetterTopic,
    dead_lettered_count: channel.deadLetteredCount,
    dropped_count: channel.droppedCount,
    expired_count: channel.expiredCount,
    replay_count: channel.replayCount,
  };
}

/** Connections that have published at least once, in connection order (nsqd: typeProducer). */
function producerStats(nsqd: StatsSource, topicFilter: string): ClientStats[] | null {
  let out: ClientStats[] | null = null;
  for (const client of nsqd.clients) {
    if (client.pubCounts.size === 0) continue;
    out ??= [];
    out.push(clientStatsOf(client, topicFilter));
  }
  return out;
}

function clientStatsOf(c: ClientV2, topicFilter: string): ClientStats {
  const s: ClientStats = {
    client_id: c.clientId,
    hostname: c.hostname,
    version: 'V2',
    remote_address: c.remoteAddress,
    state: c.state,
    ready_count: c.rdy,
    in_flight_count: c.inFlight,
    message_count: c.messageCount,
    finish_count: c.finishCount,
    requeue_count: c.requeueCount,
    connect_ts: c.connectTs,
    sample_rate: c.sampleRate,
    deflate: c.deflate,
    snappy: c.snappy,
    user_agent: c.userAgent,
  } as ClientStats; // the TLS keys follow, after the optional ones, in NSQ's key order
  // authed / auth_identity / auth_identity_url are omitempty in nsqd.
  const auth = c.authState;
  if (auth !== null && auth.authorizations.length > 0) s.authed = true;
  if (auth !== null && auth.identity !== '') s.auth_identity = auth.identity;
  if (auth !== null && auth.identityUrl !== '') s.auth_identity_url = auth.identityUrl;
  if (c.pubCounts.size > 0) {
    const counts = pubCountsOf(c.pubCounts, topicFilter);
    if (counts.length > 0) s.pub_counts = counts;
  }
  const tls = c.tlsSocket;
  s.tls = tls !== null;
  s.tls_cipher_suite = tls === null ? '' : (tls.getCipher()?.standardName ?? '');
  s.tls_version = tls === null ? '' : goTlsVersion(tls.getProtocol());
  s.tls_negotiated_protocol = tls === null ? '' : tls.alpnProtocol || '';
  // Go's ConnectionState.NegotiatedProtocolIsMutual is deprecated and always true.
  s.tls_negotiated_protocol_is_mutual = tls !== null;
  return s;
}

/** Sorted by topic (nsqd iterates a Go map: any order); only `topicFilter` when given. */
function pubCountsOf(counts: ReadonlyMap<string, number>, topicFilter: string): PubCount[] {
  const out: PubCount[] = [];
  if (topicFilter !== '') {
    const count = counts.get(topicFilter);
    if (count !== undefined) out.push({ topic: topicFilter, count });
    return out;
  }
  for (const [topic, count] of counts) out.push({ topic, count });
  if (out.length > 1) out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  return out;
}
