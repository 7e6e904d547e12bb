/**
 * nsqd's `/stats?format=json` shapes (wire vocabulary, so they live in @nsq-ts/protocol) and the
 * filter of a stats request. /stats, the text format, Prometheus /metrics and statsd all read one
 * snapshot.
 */
export type {
  ChannelStats,
  ClientStats,
  E2eLatencyStats,
  MemStats,
  PubCount,
  StatsSnapshot,
  TopicStats,
} from '@nsq-ts/protocol';

export interface StatsFilter {
  /** Only this topic (`?topic=`); a missing topic makes `topics` null. */
  topic?: string;
  /** Only this channel (`?channel=`); topics without it are dropped. */
  channel?: string;
  includeClients: boolean;
  includeMem: boolean;
}
