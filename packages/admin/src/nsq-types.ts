/**
 * The parts of nsqd's HTTP responses nsqadmin reads (nsq-spec §6) that @nsq-ts/protocol does not
 * describe (it has /stats and nsqlookupd's producers). nsqadmin reads NSQ's own daemons too, so
 * it tolerates missing optional fields and null lists.
 */
import type { ChannelStats, TopicStats } from '@nsq-ts/protocol';

export interface NsqdInfo {
  version: string;
  broadcast_address: string;
  hostname: string;
  http_port: number;
  tcp_port: number;
}

/**
 * /stats with the delivery-policy extension keys of nsq-ts nsqd (README "Delivery policies"):
 * absent from NSQ's nsqd, and from nsq-ts versions before a setting existed. Durations are Go
 * durations (`1h0m0s`).
 */
export type PolicyTopicStats = TopicStats & {
  message_ttl?: string;
  retention?: string;
  expired_count?: number;
};
export type PolicyChannelStats = ChannelStats & { expired_count?: number };
