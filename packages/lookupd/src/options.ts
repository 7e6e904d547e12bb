import type { LogLevel } from '@nsq-ts/go-compat';

/**
 * nsqlookupd's options: NSQ v1.3.0's flags (nsq-spec §4.3) in camelCase, durations in
 * milliseconds. config/lookupd-flags.ts maps `--inactive-producer-timeout=5m` etc. here.
 */
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
   * Read deadline of a TCP V1 connection (nsq-ts extension; NSQ's nsqlookupd sets none): after
   * connecting, and after each command, the next whole command (the first one with the magic)
   * must arrive within it, or the connection is closed and its registrations dropped. nsqd PINGs
   * every 15 s, so a live nsqd always beats it. 0 disables.
   */
  tcpReadTimeoutMs: number;
  logLevel: LogLevel;
  logPrefix: string;
  /**
   * Largest IDENTIFY body accepted. NSQ's nsqlookupd has no limit (a huge size makes it allocate
   * that much); this one refuses larger sizes with a fatal E_BAD_BODY before buffering.
   */
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
