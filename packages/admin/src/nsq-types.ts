/**
 * The parts of nsqd's HTTP responses nsqadmin reads (nsq-spec §6) that @nsq-ts/protocol does not
 * describe (it has /stats and nsqlookupd's producers). nsqadmin reads NSQ's own daemons too, so
 * it tolerates missing optional fields and null lists.
 */

export interface NsqdInfo {
  version: string;
  broadcast_address: string;
  hostname: string;
  http_port: number;
  tcp_port: number;
}
