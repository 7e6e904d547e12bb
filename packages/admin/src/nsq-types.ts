/**
 * The parts of nsqlookupd's and nsqd's HTTP responses nsqadmin reads (nsq-spec §6); nsqd's /stats
 * shapes are @nsq-ts/protocol's. nsqadmin reads NSQ's own daemons too, so it tolerates missing
 * optional fields and null lists.
 */

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
