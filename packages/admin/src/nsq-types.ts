/** The parts of nsqlookupd's and nsqd's HTTP responses nsqadmin reads (nsq-spec §6). */

export interface LookupdProducer {
  remote_address: string;
  hostname: string;
  broadcast_address: string;
  tcp_port: number;
  http_port: number;
  version: string;
  tombstones?: boolean[];
  topics?: string[];
}

export interface NsqdInfo {
  version: string;
  broadcast_address: string;
  hostname: string;
  http_port: number;
  tcp_port: number;
}

export interface NsqdClientStats {
  client_id: string;
  hostname: string;
  version: string;
  remote_address: string;
  state: number;
  ready_count: number;
  in_flight_count: number;
  message_count: number;
  finish_count: number;
  requeue_count: number;
  connect_ts: number;
  user_agent?: string;
  tls?: boolean;
  deflate?: boolean;
  snappy?: boolean;
  sample_rate?: number;
}

export interface NsqdChannelStats {
  channel_name: string;
  depth: number;
  backend_depth: number;
  in_flight_count: number;
  deferred_count: number;
  message_count: number;
  requeue_count: number;
  timeout_count: number;
  client_count: number;
  clients: NsqdClientStats[] | null;
  paused: boolean;
}

export interface NsqdTopicStats {
  topic_name: string;
  depth: number;
  backend_depth: number;
  message_count: number;
  paused: boolean;
  channels: NsqdChannelStats[] | null;
}

export interface NsqdStats {
  version: string;
  topics: NsqdTopicStats[] | null;
}
