/** nsqd's /stats JSON (nsq-spec §3.3) in NSQ's key order; nsq-ts extensions are absent from NSQ's nsqd. */
export interface E2eLatencyStats {
  count: number;
  /** null when no percentile is configured; otherwise one entry per configured quantile. */
  percentiles: Array<{ quantile: number; value: number }> | null;
}

export interface PubCount {
  topic: string;
  count: number;
}

export interface ClientStats {
  client_id: string;
  hostname: string;
  version: 'V2';
  remote_address: string;
  state: number;
  ready_count: number;
  in_flight_count: number;
  message_count: number;
  finish_count: number;
  requeue_count: number;
  connect_ts: number;
  sample_rate: number;
  deflate: boolean;
  snappy: boolean;
  user_agent: string;
  authed?: boolean;
  auth_identity?: string;
  auth_identity_url?: string;
  pub_counts?: PubCount[];
  tls: boolean;
  tls_cipher_suite: string;
  tls_version: string;
  tls_negotiated_protocol: string;
  tls_negotiated_protocol_is_mutual: boolean;
}

export interface ChannelStats {
  channel_name: string;
  depth: number;
  backend_depth: number;
  in_flight_count: number;
  deferred_count: number;
  message_count: number;
  requeue_count: number;
  timeout_count: number;
  client_count: number;
  clients: ClientStats[] | null;
  paused: boolean;
  e2e_processing_latency: E2eLatencyStats;
  /** nsq-ts extensions (delivery policies): the channel's settings and what they did. */
  max_attempts?: number;
  dead_letter_topic?: string;
  dead_lettered_count?: number;
  dropped_count?: number;
  expired_count?: number;
  /** nsq-ts extension: POST /channel/replay calls that moved the channel back. */
  replay_count?: number;
}

export interface TopicStats {
  topic_name: string;
  channels: ChannelStats[];
  depth: number;
  backend_depth: number;
  message_count: number;
  message_bytes: number;
  paused: boolean;
  e2e_processing_latency: E2eLatencyStats;
  /** nsq-ts extension: records in the topic's segment files found corrupt and skipped. */
  corrupt_records: number;
  /** nsq-ts extensions (delivery policies): the topic's caps and what they did. */
  max_depth?: number;
  max_bytes?: number;
  overflow?: 'reject' | 'drop_oldest';
  rejected_count?: number;
  dropped_count?: number;
  /** message_ttl as a Go duration (`0s` = off), and the messages its channels let expire. */
  message_ttl?: string;
  expired_count?: number;
  /** retention as a Go duration (`0s` = off). */
  retention?: string;
  /** Messages moved out by POST /topic/redrive since start. */
  redriven_count?: number;
}

export interface MemStats {
  heap_objects: number;
  heap_idle_bytes: number;
  heap_in_use_bytes: number;
  heap_released_bytes: number;
  gc_pause_usec_100: number;
  gc_pause_usec_99: number;
  gc_pause_usec_95: number;
  next_gc_bytes: number;
  gc_total_runs: number;
}

export interface StatsSnapshot {
  version: string;
  health: string;
  start_time: number;
  topics: TopicStats[] | null;
  memory?: MemStats;
  producers: ClientStats[] | null;
}
