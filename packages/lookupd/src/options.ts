import type { LogLevel } from '@nsq-ts/go-compat';

/** NSQ v1.3.0's flags (nsq-spec §4.3) in camelCase, durations in milliseconds. */
export interface LookupdOptions {
  /** `host:port` for TCP protocol V1 (nsqd registrations); port 0 picks a free one. */
  tcpAddress: string;
  /** `host:port` for the HTTP API; port 0 picks a free one. */
  httpAddress: string;
  /** Sent to nsqd in the IDENTIFY reply: where nsqd reaches this lookupd. '' means the hostname. */
  broadcastAddress: string;
  /** A producer with no IDENTIFY/PING for longer is hidden from /lookup and /nodes. */
  inactiveProducerTimeoutMs: number;
  /** How long /topic/tombstone hides a producer from /lookup. */
  tombstoneLifetimeMs: number;
  /**
   * nsq-ts extension (NSQ sets none): each whole command, the first with the magic, must arrive
   * within it, or the connection and its registrations are dropped. 0 disables.
   */
  tcpReadTimeoutMs: number;
  logLevel: LogLevel;
  logPrefix: string;
  /** NSQ has no limit (and allocates whatever size it is sent); larger is a fatal E_BAD_BODY. */
  maxIdentifyBodyBytes: number;
  /** Bearer tokens for state-changing HTTP endpoints (nsq-ts extension); empty: open, as NSQ. */
  httpAuthTokens: string[];
  /** With httpAuthTokens: GET endpoints need a token too. */
  httpAuthReads: boolean;
  /** Certificate and key: TLS on the TCP V1 listener (nsq-ts extension; NSQ has none). */
  tlsCert: string;
  tlsKey: string;
}

export function defaultLookupdOptions(): LookupdOptions {
  return {
    tcpAddress: '0.0.0.0:4160',
    httpAddress: '0.0.0.0:4161',
    broadcastAddress: '',
    inactiveProducerTimeoutMs: 300_000,
    tombstoneLifetimeMs: 45_000,
    tcpReadTimeoutMs: 60_000,
    logLevel: 'info',
    logPrefix: '[nsqlookupd] ',
    maxIdentifyBodyBytes: 1024 * 1024,
    httpAuthTokens: [],
    httpAuthReads: false,
    tlsCert: '',
    tlsKey: '',
  };
}
