import {
  applyFlagValues,
  FlagError,
  FlagErrorCode,
  type FlagSpec,
  formatGoUsage,
  goQuoteText,
  type OptionFlag,
  parseGoBool,
  resolveFlags,
} from '@nsq-ts/go-compat';
import { isValidTopicName } from '@nsq-ts/protocol';
import { type DaemonArgs, HTTP_AUTH_FLAGS, logLevelFlag, readDaemonFlags } from '@nsq-ts/server-kit';
import { defaultNsqdOptions, LOG_LEVELS, type NsqdOptions } from '../options.js';
import { VERSION } from '../version.js';

/**
 * nsqd's command line and config file (nsq-spec §5.12): every flag of NSQ v1.3.0 under NSQ's name,
 * the TOML keys NSQ reads for them, and the start-up checks `nsqd.New` makes. Master-only flags
 * (auth-http-request-method, topology-*, enable-experiment) are not accepted, as in v1.3.0.
 */

/** `nsqd --version`: `nsqd v1.3.0 (built w/node20.20.2)`, NSQ's format with node for go. */
export function nsqdVersionLine(): string {
  return `nsqd v${VERSION} (built w/node${process.versions.node})`;
}

/** One nsqd flag: how it parses, the NsqdOptions field it sets and the config keys that set it. */
export interface NsqdFlag extends OptionFlag<NsqdOptions> {
  /** null for flags that steer the program (`config`, `version`) or are deprecated no-ops. */
  /** TOML keys, NSQ's own first. Usually the flag name with `_` for `-`. */
  readonly configKeys: readonly string[];
  /** Inclusive bounds checked at start-up (NSQ checks only node-id and max-deflate-level). */
  readonly min?: number;
  readonly max?: number;
}

type OptionKey<T> = { [K in keyof NsqdOptions]: NsqdOptions[K] extends T ? K : never }[keyof NsqdOptions];

const DEFAULTS = defaultNsqdOptions();

function cfgKey(name: string): string {
  return name.replaceAll('-', '_');
}

function stringFlag(name: string, option: OptionKey<string>, usage: string): NsqdFlag {
  return { spec: { name, type: 'string', default: DEFAULTS[option], usage }, option, configKeys: [cfgKey(name)] };
}

function intFlag(
  name: string,
  option: OptionKey<number>,
  usage: string,
  bounds: { min?: number; max?: number } = { min: 0 },
): NsqdFlag {
  return {
    spec: { name, type: 'int', default: DEFAULTS[option], usage },
    option,
    configKeys: [cfgKey(name)],
    ...bounds,
  };
}

function durationFlag(name: string, option: OptionKey<number>, usage: string): NsqdFlag {
  return {
    spec: { name, type: 'duration', default: DEFAULTS[option], usage },
    option,
    configKeys: [cfgKey(name)],
    min: 0,
  };
}

function boolFlag(name: string, option: OptionKey<boolean>, usage: string): NsqdFlag {
  return { spec: { name, type: 'bool', default: DEFAULTS[option], usage }, option, configKeys: [cfgKey(name)] };
}

/** NSQ's tlsRequiredOption: case-insensitive `tcp-https` or any strconv.ParseBool text. */
function parseTlsRequired(raw: string): NsqdOptions['tlsRequired'] {
  const s = raw.toLowerCase();
  if (s === 'tcp-https') return 'tcp-https';
  try {
    return parseGoBool(s) ? 'true' : 'false';
  } catch {
    throw new Error('must be true, false or tcp-https');
  }
}

export function parseOverflow(raw: string): NsqdOptions['overflow'] {
  if (raw === 'reject' || raw === 'drop_oldest') return raw;
  throw new Error('must be reject or drop_oldest');
}

function parseReplicationAck(raw: string): NsqdOptions['replicationAck'] {
  if (raw === 'sync' || raw === 'async') return raw;
  throw new Error('must be sync or async');
}

const TLS_VERSIONS: readonly string[] = ['tls1.0', 'tls1.1', 'tls1.2', 'tls1.3'];

/** NSQ's tlsMinVersionOption, less `ssl3.0`, which node cannot speak. '' keeps the default. */
function parseTlsMinVersion(raw: string): string {
  const s = raw.toLowerCase();
  if (s === '') return DEFAULTS.tlsMinVersion;
  if (!TLS_VERSIONS.includes(s))
    throw new Error(`unknown tlsVersionOption ${goQuoteText(s)} (tls1.0, tls1.1, tls1.2, tls1.3)`);
  return s;
}

/** The table, in NSQ's order (apps/nsqd/options.go); the usage text sorts it by name. */
export const NSQD_FLAGS: readonly NsqdFlag[] = [
  // basic options
  {
    spec: { name: 'version', type: 'bool', default: false, usage: 'print version string' },
    option: null,
    configKeys: [],
  },
  {
    spec: {
      name: 'config',
      type: 'string',
      default: '',
      usage: 'path to config file (TOML; keys are flag names with _)',
    },
    option: null,
    configKeys: [],
  },
  {
    spec: logLevelFlag(DEFAULTS.logLevel),
    option: 'logLevel',
    configKeys: ['log_level'],
  },
  stringFlag('log-prefix', 'logPrefix', 'log message prefix'),
  {
    spec: { name: 'verbose', type: 'bool', default: false, usage: '[deprecated] has no effect, use --log-level' },
    option: null,
    configKeys: ['verbose'],
  },
  {
    spec: {
      name: 'node-id',
      type: 'int',
      default: DEFAULTS.nodeId,
      // NSQ prints the hostname hash here; -1 stands for it until the broker computes it.
      defaultText: '',
      usage: 'unique part for message IDs, (int) in range [0,1024) (default is hash of hostname)',
    },
    option: 'nodeId',
    // NSQ's Options tags node-id with cfg:"id".
    configKeys: ['id', 'node_id'],
  },
  {
    spec: { name: 'worker-id', type: 'int', default: 0, defaultText: '', usage: '[deprecated] use --node-id' },
    option: null,
    configKeys: ['worker_id'],
  },

  stringFlag('https-address', 'httpsAddress', '<addr>:<port> to listen on for HTTPS clients'),
  stringFlag('http-address', 'httpAddress', '<addr>:<port> to listen on for HTTP clients'),
  stringFlag('tcp-address', 'tcpAddress', '<addr>:<port> to listen on for TCP clients'),
  {
    spec: {
      name: 'auth-http-address',
      type: 'string-array',
      default: [],
      usage: '<addr>:<port> or a full url to query auth server (may be given multiple times)',
    },
    option: 'authHttpAddresses',
    configKeys: ['auth_http_addresses', 'auth_http_address'],
  },
  stringFlag(
    'broadcast-address',
    'broadcastAddress',
    'address that will be registered with lookupd (defaults to the OS hostname)',
  ),
  intFlag(
    'broadcast-tcp-port',
    'broadcastTcpPort',
    'TCP port that will be registered with lookupd (defaults to the TCP port that this nsqd is listening on)',
    { min: 0, max: 65535 },
  ),
  intFlag(
    'broadcast-http-port',
    'broadcastHttpPort',
    'HTTP port that will be registered with lookupd (defaults to the HTTP port that this nsqd is listening on)',
    { min: 0, max: 65535 },
  ),
  {
    spec: {
      name: 'lookupd-tcp-address',
      type: 'string-array',
      default: [],
      usage: 'lookupd TCP address (may be given multiple times)',
    },
    option: 'lookupdTcpAddresses',
    // NSQ's Options tags this cfg:"nsqlookupd_tcp_addresses"; the others are the obvious spellings.
    configKeys: ['nsqlookupd_tcp_addresses', 'lookupd_tcp_addresses', 'lookupd_tcp_address'],
  },
  durationFlag('http-client-connect-timeout', 'httpClientConnectTimeoutMs', 'timeout for HTTP connect'),
  durationFlag('http-client-request-timeout', 'httpClientRequestTimeoutMs', 'timeout for HTTP request'),

  // diskqueue options
  stringFlag('data-path', 'dataPath', 'path to store disk-backed messages'),
  intFlag('mem-queue-size', 'memQueueSize', 'number of messages to keep in memory (per topic/channel)'),
  intFlag('max-bytes-per-file', 'maxBytesPerFile', 'number of bytes per diskqueue file before rolling', { min: 1 }),
  intFlag('sync-every', 'syncEvery', 'number of messages per diskqueue fsync'),
  durationFlag('sync-timeout', 'syncTimeoutMs', 'duration of time per diskqueue fsync'),
  intFlag(
    'queue-scan-worker-pool-max',
    'queueScanWorkerPoolMax',
    'max concurrency for checking in-flight and deferred message timeouts',
    { min: 1 },
  ),
  intFlag(
    'queue-scan-selection-count',
    'queueScanSelectionCount',
    'number of channels to check per cycle (every 100ms) for in-flight and deferred timeouts',
    { min: 1 },
  ),

  // msg and command options
  durationFlag('msg-timeout', 'msgTimeoutMs', 'default duration to wait before auto-requeing a message'),
  durationFlag('max-msg-timeout', 'maxMsgTimeoutMs', 'maximum duration before a message will timeout'),
  intFlag('max-msg-size', 'maxMsgSize', 'maximum size of a single message in bytes'),
  durationFlag('max-req-timeout', 'maxReqTimeoutMs', 'maximum requeuing timeout for a message'),
  intFlag('max-body-size', 'maxBodySize', 'maximum size of a single command body'),

  // client overridable configuration options
  durationFlag(
    'max-heartbeat-interval',
    'maxHeartbeatIntervalMs',
    'maximum client configurable duration of time between client heartbeats',
  ),
  intFlag('max-rdy-count', 'maxRdyCount', 'maximum RDY count for a client'),
  intFlag(
    'max-output-buffer-size',
    'maxOutputBufferSize',
    'maximum client configurable size (in bytes) for a client output buffer',
  ),
  durationFlag(
    'max-output-buffer-timeout',
    'maxOutputBufferTimeoutMs',
    'maximum client configurable duration of time between flushing to a client',
  ),
  durationFlag(
    'min-output-buffer-timeout',
    'minOutputBufferTimeoutMs',
    'minimum client configurable duration of time between flushing to a client',
  ),
  durationFlag(
    'output-buffer-timeout',
    'outputBufferTimeoutMs',
    'default duration of time between flushing data to clients',
  ),
  intFlag(
    'max-channel-consumers',
    'maxChannelConsumers',
    'maximum channel consumer connection count per nsqd instance (default 0, i.e., unlimited)',
  ),
  intFlag(
    'max-connections',
    'maxConnections',
    'maximum TCP client connections; new ones over it are closed at once (default 0, i.e., unlimited; not in NSQ)',
  ),

  // delivery policies (not in NSQ): defaults for channels without their own /channel/config
  intFlag(
    'max-attempts',
    'maxAttempts',
    'deliveries after which a message that comes back goes to the dead-letter topic (default 0, i.e., unlimited; not in NSQ)',
    { min: 0, max: 65535 },
  ),
  stringFlag(
    'dead-letter-topic',
    'deadLetterTopic',
    'topic a message goes to after --max-attempts deliveries (default none: it is dropped; not in NSQ)',
  ),

  intFlag(
    'max-depth',
    'maxDepth',
    "messages a topic's deepest channel may have queued (default 0, i.e., unlimited; not in NSQ)",
  ),
  intFlag(
    'max-bytes',
    'maxBytes',
    "body bytes a topic's deepest channel may have queued (default 0, i.e., unlimited; not in NSQ)",
  ),
  {
    spec: {
      name: 'overflow',
      type: 'custom',
      default: DEFAULTS.overflow,
      parse: parseOverflow,
      usage: "what a publish past --max-depth/--max-bytes does: 'reject' it or 'drop_oldest' (not in NSQ)",
    },
    option: 'overflow',
    configKeys: ['overflow'],
  },
  durationFlag(
    'message-ttl',
    'messageTtlMs',
    'age from its publish time after which a message is no longer delivered (default 0, i.e., none; not in NSQ)',
  ),
  durationFlag(
    'retention',
    'retentionMs',
    "how long a topic's segments are kept after every channel finished them, for /channel/replay (default 0, i.e., none; not in NSQ)",
  ),

  // statsd integration options
  stringFlag('statsd-address', 'statsdAddress', 'UDP <addr>:<port> of a statsd daemon for pushing stats'),
  durationFlag('statsd-interval', 'statsdIntervalMs', 'duration between pushing to statsd'),
  boolFlag('statsd-mem-stats', 'statsdMemStats', 'toggle sending memory and GC stats to statsd'),
  stringFlag('statsd-prefix', 'statsdPrefix', 'prefix used for keys sent to statsd (%s for host replacement)'),
  intFlag('statsd-udp-packet-size', 'statsdUdpPacketSize', 'the size in bytes of statsd UDP packets', { min: 1 }),
  boolFlag(
    'statsd-exclude-ephemeral',
    'statsdExcludeEphemeral',
    'skip ephemeral topics and channels when sending stats to statsd',
  ),

  // end to end percentiles
  {
    spec: {
      name: 'e2e-processing-latency-percentile',
      type: 'float-array',
      default: [],
      usage:
        "message processing time percentiles (as float (0, 1.0]) to track (can be specified multiple times or comma separated '1.0,0.99,0.95', default none)",
    },
    option: 'e2eProcessingLatencyPercentiles',
    configKeys: ['e2e_processing_latency_percentiles', 'e2e_processing_latency_percentile'],
  },
  durationFlag(
    'e2e-processing-latency-window-time',
    'e2eProcessingLatencyWindowTimeMs',
    'calculate end to end latency quantiles for this duration of time (ie: 60s would only show quantile calculations from the past 60 seconds)',
  ),

  // TLS config
  stringFlag('tls-cert', 'tlsCert', 'path to certificate file'),
  stringFlag('tls-key', 'tlsKey', 'path to key file'),
  stringFlag(
    'tls-client-auth-policy',
    'tlsClientAuthPolicy',
    "client certificate auth policy ('require' or 'require-verify')",
  ),
  stringFlag('tls-root-ca-file', 'tlsRootCaFile', 'path to certificate authority file'),
  {
    spec: {
      name: 'tls-required',
      type: 'custom',
      isBool: true,
      default: DEFAULTS.tlsRequired,
      defaultText: '',
      parse: parseTlsRequired,
      usage: 'require TLS for client connections (true, false, tcp-https)',
    },
    option: 'tlsRequired',
    configKeys: ['tls_required'],
  },
  {
    spec: {
      name: 'tls-min-version',
      type: 'custom',
      default: DEFAULTS.tlsMinVersion,
      parse: parseTlsMinVersion,
      usage: "minimum SSL/TLS version acceptable ('tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3')",
    },
    option: 'tlsMinVersion',
    configKeys: ['tls_min_version'],
  },

  // compression
  boolFlag('deflate', 'deflate', 'enable deflate feature negotiation (client compression)'),
  intFlag(
    'max-deflate-level',
    'maxDeflateLevel',
    'max deflate compression level a client can negotiate (> values == > nsqd CPU usage)',
    { min: 1, max: 9 },
  ),
  boolFlag('snappy', 'snappy', 'enable snappy feature negotiation (client compression)'),
  intFlag(
    'transport-workers',
    'transportWorkers',
    'threads that run TLS and snappy/deflate of upgraded connections (0 = on the event loop)',
    { min: 0, max: 64 },
  ),

  // security extensions (not in NSQ)
  { spec: HTTP_AUTH_FLAGS.token, option: 'httpAuthTokens', configKeys: ['http_auth_tokens', 'http_auth_token'] },
  { spec: HTTP_AUTH_FLAGS.reads, option: 'httpAuthReads', configKeys: ['http_auth_reads'] },
  boolFlag('lookupd-tls', 'lookupdTls', 'connect to nsqlookupd over TLS'),
  stringFlag(
    'lookupd-tls-root-ca-file',
    'lookupdTlsRootCaFile',
    'path to certificate authority file to verify nsqlookupd (default: system CAs)',
  ),
  stringFlag(
    'lookupd-http-auth-token',
    'lookupdHttpAuthToken',
    'bearer token sent to nsqlookupd HTTP (its --http-auth-token), needed with its --http-auth-reads',
  ),

  // replication (not in NSQ; docs/replication.md)
  stringFlag('ha-group', 'haGroup', 'replica group to join (needs --etcd-endpoints and --replication-address)'),
  stringFlag('ha-member-id', 'haMemberId', "this member's id in the group (default: from --replication-address)"),
  {
    spec: {
      name: 'etcd-endpoints',
      type: 'string-array',
      default: [],
      usage: 'etcd URLs (http://host:2379), comma-separated or given multiple times',
    },
    option: 'etcdEndpoints',
    configKeys: ['etcd_endpoints'],
  },
  stringFlag('replication-address', 'replicationAddress', '<addr>:<port> to listen on for followers of this leader'),
  {
    spec: {
      name: 'replication-ack',
      type: 'custom',
      default: DEFAULTS.replicationAck,
      parse: parseReplicationAck,
      usage: 'sync: answer a publish once every in-sync member stored it; async: at once',
    },
    option: 'replicationAck',
    configKeys: ['replication_ack'],
  },
  intFlag('min-insync', 'minInsync', 'members (the leader included) that must store a publish before it is answered', {
    min: 1,
  }),
  durationFlag('replication-timeout', 'replicationTimeoutMs', 'a follower this far behind leaves the in-sync set'),
  durationFlag('ha-lease-ttl', 'haLeaseTtlMs', "the leader's etcd lease (whole seconds)"),
];

const NSQD_SPECS: readonly FlagSpec[] = NSQD_FLAGS.map((f) => f.spec);
const FLAG_BY_NAME: ReadonlyMap<string, NsqdFlag> = new Map(NSQD_FLAGS.map((f) => [f.spec.name, f]));

/** The text `nsqd -h` prints: Go's `Usage of nsqd:` and its flag list. */
export function nsqdUsage(): string {
  return formatGoUsage('nsqd', NSQD_SPECS);
}

/** `warnings`: config keys that set nothing (NSQ ignores them silently; we say so). */
export type NsqdArgs = DaemonArgs<NsqdOptions>;

/**
 * Reads nsqd's command line (without `node` and the script) the way NSQ v1.3.0 does: Go flag
 * syntax, then `--version`, then the `--config` TOML file, whose values apply only to flags not
 * given on the command line, then nsqd's start-up checks. Throws FlagError.
 */
export function parseNsqdArgs(argv: readonly string[]): NsqdArgs {
  const read = readDaemonFlags('nsqd', NSQD_FLAGS, argv);
  if (read.kind !== 'run') return read;
  const { parsed, warnings } = read;
  const { values, explicit } = resolveFlags(NSQD_FLAGS, parsed, read.config);

  // --worker-id: the pre-1.0 name of --node-id, used only when --node-id is not given.
  if (!explicit.has('node-id') && explicit.has('worker-id')) {
    values.set('node-id', values.get('worker-id') as number);
    explicit.add('node-id');
  }
  // NSQ's FloatArray sorts the flag's values, largest first; values from the config stay in order.
  if (parsed.set.has('e2e-processing-latency-percentile')) {
    (values.get('e2e-processing-latency-percentile') as number[]).sort((a, b) => b - a);
  }

  const options = defaultNsqdOptions();
  applyFlagValues(options, NSQD_FLAGS, values);
  // An explicit -1 is refused like any other value outside [0,1024); only the default means "hash".
  if (explicit.has('node-id')) checkNodeId(options.nodeId, true);
  return { kind: 'run', options: validateNsqdOptions(options), warnings };
}

/**
 * nsqd's start-up checks (NSQ's nsqd.New) plus the bounds in NSQD_FLAGS, for options from any
 * source. Returns a copy with NSQ's one implied setting applied: a --tls-client-auth-policy turns
 * --tls-required on. Throws FlagError with code InvalidOption.
 */
export function validateNsqdOptions(input: NsqdOptions): NsqdOptions {
  const options: NsqdOptions = {
    ...input,
    lookupdTcpAddresses: [...input.lookupdTcpAddresses],
    authHttpAddresses: [...input.authHttpAddresses],
    httpAuthTokens: input.httpAuthTokens.filter((t) => t !== ''),
    e2eProcessingLatencyPercentiles: [...input.e2eProcessingLatencyPercentiles],
  };
  const fail = (flag: string, message: string) => new FlagError(FlagErrorCode.InvalidOption, message, flag);

  checkNodeId(options.nodeId, false);
  for (const flag of NSQD_FLAGS) {
    if (flag.option === null || (flag.min === undefined && flag.max === undefined)) continue;
    const value = options[flag.option] as number;
    const name = flag.spec.name;
    const { min, max } = flag;
    if (!Number.isFinite(value) || (min !== undefined && value < min) || (max !== undefined && value > max)) {
      if (flag.spec.type === 'duration') throw fail(name, `--${name} must not be negative`);
      throw fail(name, max === undefined ? `--${name} must be >= ${min}` : `--${name} must be [${min},${max}]`);
    }
  }
  for (const p of options.e2eProcessingLatencyPercentiles) {
    if (!(p > 0 && p <= 1)) {
      throw fail(
        'e2e-processing-latency-percentile',
        `invalid E2E processing latency percentile: ${p} (each must be in (0,1])`,
      );
    }
  }
  if (options.deadLetterTopic !== '' && !isValidTopicName(options.deadLetterTopic)) {
    throw fail(
      'dead-letter-topic',
      `--dead-letter-topic ${goQuoteText(options.deadLetterTopic)} is not a valid topic name`,
    );
  }
  if (!LOG_LEVELS.includes(options.logLevel)) throw fail('log-level', `invalid log level '${options.logLevel}'`);
  if (!TLS_VERSIONS.includes(options.tlsMinVersion)) {
    throw fail('tls-min-version', `unknown tlsVersionOption ${goQuoteText(options.tlsMinVersion)}`);
  }
  if (!['false', 'true', 'tcp-https'].includes(options.tlsRequired)) {
    throw fail('tls-required', '--tls-required must be true, false or tcp-https');
  }
  // NSQ maps any other policy to "no client certificate" yet still forces TLS on; a typo there
  // would silently drop client authentication, so it is refused here.
  const policy = options.tlsClientAuthPolicy;
  if (policy !== '' && policy !== 'require' && policy !== 'require-verify') {
    throw fail(
      'tls-client-auth-policy',
      `--tls-client-auth-policy must be require or require-verify, not ${goQuoteText(policy)}`,
    );
  }
  if (policy !== '' && options.tlsRequired === 'false') options.tlsRequired = 'true';
  if ((options.tlsCert === '') !== (options.tlsKey === '')) {
    throw fail(options.tlsCert === '' ? 'tls-cert' : 'tls-key', '--tls-cert and --tls-key must be given together');
  }
  if (options.tlsRequired !== 'false' && options.tlsCert === '') {
    throw fail('tls-required', 'cannot require TLS client connections without TLS key and cert');
  }
  if (options.httpAuthReads && options.httpAuthTokens.length === 0) {
    throw fail('http-auth-reads', '--http-auth-reads needs --http-auth-token');
  }
  if (options.lookupdTlsRootCaFile !== '' && !options.lookupdTls) {
    throw fail('lookupd-tls-root-ca-file', '--lookupd-tls-root-ca-file needs --lookupd-tls');
  }
  checkReplication(options, fail);
  return options;
}

/** --ha-group needs the rest of a member's settings; without it no replication flag may be set. */
function checkReplication(options: NsqdOptions, fail: (flag: string, message: string) => FlagError): void {
  options.etcdEndpoints = options.etcdEndpoints
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (options.haGroup === '') {
    if (options.etcdEndpoints.length > 0) throw fail('etcd-endpoints', '--etcd-endpoints needs --ha-group');
    if (options.replicationAddress !== '') {
      throw fail('replication-address', '--replication-address needs --ha-group');
    }
    return;
  }
  if (!HA_NAME.test(options.haGroup)) throw fail('ha-group', `--ha-group must be 1-64 of [A-Za-z0-9_.-]`);
  if (options.haMemberId !== '' && !HA_NAME.test(options.haMemberId)) {
    throw fail('ha-member-id', `--ha-member-id must be 1-64 of [A-Za-z0-9_.-]`);
  }
  if (options.etcdEndpoints.length === 0) throw fail('etcd-endpoints', '--ha-group needs --etcd-endpoints');
  for (const e of options.etcdEndpoints) {
    if (!/^https?:\/\/[^/]+$/.test(e))
      throw fail('etcd-endpoints', `--etcd-endpoints: ${goQuoteText(e)} is not http(s)://host:port`);
  }
  if (!/^.+:\d+$/.test(options.replicationAddress) || options.replicationAddress.endsWith(':0')) {
    throw fail('replication-address', '--ha-group needs --replication-address=<addr>:<port> (a fixed port)');
  }
  if (options.haLeaseTtlMs < 1_000 || options.haLeaseTtlMs % 1_000 !== 0) {
    throw fail('ha-lease-ttl', '--ha-lease-ttl must be whole seconds, at least 1s');
  }
  if (options.replicationTimeoutMs <= 0) throw fail('replication-timeout', '--replication-timeout must be > 0');
  if (options.minInsync > 1 && options.replicationAck === 'async') {
    throw fail('min-insync', '--min-insync above 1 needs --replication-ack=sync');
  }
  // Answered only once stored on every in-sync member: a publish may not be answered from memory.
  if (options.replicationAck === 'sync') options.memQueueSize = 0;
}

const HA_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** -1 (the default) means "hash of the hostname" unless it was given explicitly. */
function checkNodeId(id: number, explicit: boolean): void {
  if (!explicit && id === -1) return;
  if (!Number.isInteger(id) || id < 0 || id >= 1024) {
    throw new FlagError(FlagErrorCode.InvalidOption, '--node-id must be [0,1024)', 'node-id');
  }
}

/** The flag table entry for a name (without dashes), for tools that document or map flags. */
export function nsqdFlag(name: string): NsqdFlag | undefined {
  return FLAG_BY_NAME.get(name);
}
