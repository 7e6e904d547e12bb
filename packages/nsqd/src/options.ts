import type { LogLevel } from '@nsq-ts/go-compat';

/**
 * nsqd's options: NSQ v1.3.0's flags (nsq-spec §5.12) in camelCase with units in their names.
 * Durations are milliseconds. The flag parser (config/) maps `--max-msg-timeout=15m` etc. here.
 */
export interface NsqdOptions {
  /** `host:port` to listen on for TCP V2; port 0 picks a free one. */
  tcpAddress: string;
  /** `host:port` for HTTP; '' disables it. */
  httpAddress: string;
  httpsAddress: string;
  broadcastAddress: string;
  broadcastTcpPort: number;
  broadcastHttpPort: number;
  lookupdTcpAddresses: string[];
  authHttpAddresses: string[];
  httpClientConnectTimeoutMs: number;
  httpClientRequestTimeoutMs: number;
  dataPath: string;
  nodeId: number;
  logLevel: LogLevel;
  logPrefix: string;

  memQueueSize: number;
  maxBytesPerFile: number;
  syncEvery: number;
  syncTimeoutMs: number;
  queueScanWorkerPoolMax: number;
  queueScanSelectionCount: number;

  msgTimeoutMs: number;
  maxMsgTimeoutMs: number;
  maxMsgSize: number;
  maxReqTimeoutMs: number;
  maxBodySize: number;
  maxHeartbeatIntervalMs: number;
  maxRdyCount: number;
  maxOutputBufferSize: number;
  maxOutputBufferTimeoutMs: number;
  minOutputBufferTimeoutMs: number;
  outputBufferTimeoutMs: number;
  maxChannelConsumers: number;
  /** TCP client connections at most (not an NSQ flag); 0 = unlimited. */
  maxConnections: number;
  /** Delivery policies (issue 19, not in NSQ): defaults of channels that do not set their own. */
  maxAttempts: number;
  deadLetterTopic: string;
  maxDepth: number;
  maxBytes: number;
  overflow: 'reject' | 'drop_oldest';
  messageTtlMs: number;
  retentionMs: number;

  statsdAddress: string;
  statsdIntervalMs: number;
  statsdMemStats: boolean;
  statsdPrefix: string;
  statsdUdpPacketSize: number;
  statsdExcludeEphemeral: boolean;
  e2eProcessingLatencyPercentiles: number[];
  e2eProcessingLatencyWindowTimeMs: number;

  tlsCert: string;
  tlsKey: string;
  tlsRootCaFile: string;
  tlsClientAuthPolicy: string;
  tlsRequired: 'false' | 'true' | 'tcp-https';
  tlsMinVersion: string;
  deflate: boolean;
  maxDeflateLevel: number;
  snappy: boolean;
  /** Threads running TLS and compression layers; 0: on the event loop (nsq-ts extension). */
  transportWorkers: number;

  /** Bearer tokens for state-changing HTTP endpoints (nsq-ts extension); empty: open, as NSQ. */
  httpAuthTokens: string[];
  /** With httpAuthTokens: GET endpoints need a token too. */
  httpAuthReads: boolean;
  /** Connect to nsqlookupd over TLS (nsq-ts extension). */
  lookupdTls: boolean;
  /** CA file to verify nsqlookupd's certificate; '' uses the system CAs. */
  lookupdTlsRootCaFile: string;
  /**
   * Sent as `Authorization: Bearer` with nsqd's `GET /channels` to nsqlookupd, for lookupds whose
   * --http-auth-reads closes reads (nsq-ts extension); '' sends none. A secret: never logged.
   */
  lookupdHttpAuthToken: string;

  /** Replication (issue 20, not in NSQ; docs/replication.md). '' = a lone nsqd, nothing below applies. */
  haGroup: string;
  /** This member's id in the group, stable across restarts; '' = derived from --replication-address. */
  haMemberId: string;
  etcdEndpoints: string[];
  /** `host:port` the leader listens on for its followers. */
  replicationAddress: string;
  /** sync: a publish is answered once every in-sync member stored it; async: at once. */
  replicationAck: 'sync' | 'async';
  /** Members (the leader included) that must hold a publish before it is acknowledged. */
  minInsync: number;
  /** A follower this far behind leaves the in-sync set. */
  replicationTimeoutMs: number;
  /** The leader's etcd lease, whole seconds. */
  haLeaseTtlMs: number;
}

export { LOG_LEVELS, type LogLevel } from '@nsq-ts/go-compat';

export function defaultNsqdOptions(): NsqdOptions {
  return {
    tcpAddress: '0.0.0.0:4150',
    httpAddress: '0.0.0.0:4151',
    httpsAddress: '0.0.0.0:4152',
    broadcastAddress: '',
    broadcastTcpPort: 0,
    broadcastHttpPort: 0,
    lookupdTcpAddresses: [],
    authHttpAddresses: [],
    httpClientConnectTimeoutMs: 2_000,
    httpClientRequestTimeoutMs: 5_000,
    dataPath: '',
    nodeId: -1,
    logLevel: 'info',
    logPrefix: '[nsqd] ',

    memQueueSize: 10_000,
    maxBytesPerFile: 104_857_600,
    syncEvery: 2_500,
    syncTimeoutMs: 2_000,
    queueScanWorkerPoolMax: 4,
    queueScanSelectionCount: 20,

    msgTimeoutMs: 60_000,
    maxMsgTimeoutMs: 15 * 60_000,
    maxMsgSize: 1_048_576,
    maxReqTimeoutMs: 60 * 60_000,
    maxBodySize: 5_242_880,
    maxHeartbeatIntervalMs: 60_000,
    maxRdyCount: 2_500,
    maxOutputBufferSize: 65_536,
    maxOutputBufferTimeoutMs: 30_000,
    minOutputBufferTimeoutMs: 25,
    outputBufferTimeoutMs: 250,
    maxChannelConsumers: 0,
    maxConnections: 0,
    maxAttempts: 0,
    deadLetterTopic: '',
    maxDepth: 0,
    maxBytes: 0,
    overflow: 'reject',
    messageTtlMs: 0,
    retentionMs: 0,

    statsdAddress: '',
    statsdIntervalMs: 60_000,
    statsdMemStats: true,
    statsdPrefix: 'nsq.%s',
    statsdUdpPacketSize: 508,
    statsdExcludeEphemeral: false,
    e2eProcessingLatencyPercentiles: [],
    e2eProcessingLatencyWindowTimeMs: 10 * 60_000,

    tlsCert: '',
    tlsKey: '',
    tlsRootCaFile: '',
    tlsClientAuthPolicy: '',
    tlsRequired: 'false',
    tlsMinVersion: 'tls1.0',
    deflate: true,
    maxDeflateLevel: 6,
    snappy: true,
    transportWorkers: 0,

    httpAuthTokens: [],
    httpAuthReads: false,
    lookupdTls: false,
    lookupdTlsRootCaFile: '',
    lookupdHttpAuthToken: '',

    haGroup: '',
    haMemberId: '',
    etcdEndpoints: [],
    replicationAddress: '',
    replicationAck: 'sync',
    minInsync: 1,
    replicationTimeoutMs: 10_000,
    haLeaseTtlMs: 5_000,
  };
}
