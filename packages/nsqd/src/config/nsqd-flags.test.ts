import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlagError, FlagErrorCode } from '@nsq-ts/go-compat';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultNsqdOptions, type NsqdOptions } from '../options.js';
import {
  NSQD_FLAGS,
  type NsqdArgs,
  nsqdFlag,
  nsqdUsage,
  nsqdVersionLine,
  parseNsqdArgs,
  validateNsqdOptions,
} from './nsqd-flags.js';

const dir = mkdtempSync(join(tmpdir(), 'nsqd-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let configCount = 0;

function configFile(toml: string): string {
  const path = join(dir, `nsqd-${configCount++}.toml`);
  writeFileSync(path, toml);
  return path;
}

function run(...argv: string[]): { options: NsqdOptions; warnings: readonly string[] } {
  const r: NsqdArgs = parseNsqdArgs(argv);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r;
}

function options(...argv: string[]): NsqdOptions {
  return run(...argv).options;
}

function thrown(fn: () => unknown): FlagError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FlagError);
    return err as FlagError;
  }
  throw new Error('expected a FlagError');
}

const CERT = ['--tls-cert=/c.pem', '--tls-key=/k.pem'];
const GROUP = ['--ha-group=g', '--etcd-endpoints=http://e:2379', '--replication-address=10.0.0.1:4153'];

describe('nsqd flag table', () => {
  it('has exactly the v1.3.0 flags (nsq-spec §5.12)', () => {
    expect(NSQD_FLAGS.map((f) => f.spec.name).sort()).toEqual(
      [
        'config',
        'version',
        'log-level',
        'log-prefix',
        'verbose',
        'node-id',
        'worker-id',
        'tcp-address',
        'http-address',
        'https-address',
        'broadcast-address',
        'broadcast-tcp-port',
        'broadcast-http-port',
        'lookupd-tcp-address',
        'auth-http-address',
        'http-client-connect-timeout',
        'http-client-request-timeout',
        'data-path',
        'mem-queue-size',
        'max-bytes-per-file',
        'sync-every',
        'sync-timeout',
        'queue-scan-worker-pool-max',
        'queue-scan-selection-count',
        'msg-timeout',
        'max-msg-timeout',
        'max-msg-size',
        'max-req-timeout',
        'max-body-size',
        'max-heartbeat-interval',
        'max-rdy-count',
        'max-output-buffer-size',
        'max-output-buffer-timeout',
        'min-output-buffer-timeout',
        'output-buffer-timeout',
        'max-channel-consumers',
        'statsd-address',
        'statsd-interval',
        'statsd-mem-stats',
        'statsd-prefix',
        'statsd-udp-packet-size',
        'statsd-exclude-ephemeral',
        'e2e-processing-latency-percentile',
        'e2e-processing-latency-window-time',
        'tls-cert',
        'tls-key',
        'tls-root-ca-file',
        'tls-client-auth-policy',
        'tls-required',
        'tls-min-version',
        'deflate',
        'max-deflate-level',
        'snappy',
        // nsq-ts extension: TLS and compression off the event loop
        'transport-workers',
        // nsq-ts security extensions
        'http-auth-token',
        'http-auth-reads',
        'lookupd-tls',
        'lookupd-tls-root-ca-file',
        'lookupd-http-auth-token',
        // nsq-ts replication
        'ha-group',
        'ha-member-id',
        'etcd-endpoints',
        'replication-address',
        'replication-ack',
        'min-insync',
        'replication-timeout',
        'ha-lease-ttl',
        // nsq-ts hardening extension
        'max-connections',
        // nsq-ts delivery policies
        'max-attempts',
        'dead-letter-topic',
        'max-depth',
        'max-bytes',
        'overflow',
        'message-ttl',
        'retention',
      ].sort(),
    );
  });

  it('maps every NsqdOptions field exactly once, defaults from defaultNsqdOptions()', () => {
    const defaults = defaultNsqdOptions();
    const mapped = NSQD_FLAGS.flatMap((f) => (f.option === null ? [] : [f.option]));
    expect([...mapped].sort()).toEqual(Object.keys(defaults).sort());
    for (const flag of NSQD_FLAGS) {
      if (flag.option !== null) expect(flag.spec.default, flag.spec.name).toEqual(defaults[flag.option]);
    }
  });

  it('looks flags up by name', () => {
    expect(nsqdFlag('mem-queue-size')?.option).toBe('memQueueSize');
    expect(nsqdFlag('nope')).toBeUndefined();
  });
});

describe('parseNsqdArgs', () => {
  it('returns the defaults for no arguments', () => {
    expect(parseNsqdArgs([])).toEqual({ kind: 'run', options: defaultNsqdOptions(), warnings: [] });
  });

  // One row per option-setting flag, so a flag that maps nowhere fails here.
  const ROWS: [string[], keyof NsqdOptions, unknown][] = [
    [['--log-level=DEBUG'], 'logLevel', 'debug'],
    [['-log-prefix', '[x] '], 'logPrefix', '[x] '],
    [['--node-id=7'], 'nodeId', 7],
    [['--tcp-address', '127.0.0.1:0'], 'tcpAddress', '127.0.0.1:0'],
    [['-http-address='], 'httpAddress', ''],
    [['--https-address=:4443'], 'httpsAddress', ':4443'],
    [['--broadcast-address=h1'], 'broadcastAddress', 'h1'],
    [['--broadcast-tcp-port=1'], 'broadcastTcpPort', 1],
    [['--broadcast-http-port=65535'], 'broadcastHttpPort', 65535],
    [['--lookupd-tcp-address=a:4160', '-lookupd-tcp-address', 'b:4160'], 'lookupdTcpAddresses', ['a:4160', 'b:4160']],
    [['--auth-http-address=a:1', '--auth-http-address=http://b/auth'], 'authHttpAddresses', ['a:1', 'http://b/auth']],
    [['--http-client-connect-timeout=1s'], 'httpClientConnectTimeoutMs', 1000],
    [['--http-client-request-timeout=1.5s'], 'httpClientRequestTimeoutMs', 1500],
    [['--data-path=/tmp/d'], 'dataPath', '/tmp/d'],
    [['--mem-queue-size=0'], 'memQueueSize', 0],
    [['--max-bytes-per-file=1024'], 'maxBytesPerFile', 1024],
    [['--sync-every=1'], 'syncEvery', 1],
    [['--sync-timeout=100ms'], 'syncTimeoutMs', 100],
    [['--queue-scan-worker-pool-max=8'], 'queueScanWorkerPoolMax', 8],
    [['--queue-scan-selection-count=5'], 'queueScanSelectionCount', 5],
    [['--msg-timeout=2m'], 'msgTimeoutMs', 120_000],
    [['--max-msg-timeout=1h'], 'maxMsgTimeoutMs', 3_600_000],
    [['--max-msg-size=100'], 'maxMsgSize', 100],
    [['--max-req-timeout=10s'], 'maxReqTimeoutMs', 10_000],
    [['--max-body-size=200'], 'maxBodySize', 200],
    [['--max-heartbeat-interval=5s'], 'maxHeartbeatIntervalMs', 5000],
    [['--max-rdy-count=10'], 'maxRdyCount', 10],
    [['--max-output-buffer-size=1'], 'maxOutputBufferSize', 1],
    [['--max-output-buffer-timeout=1s'], 'maxOutputBufferTimeoutMs', 1000],
    [['--min-output-buffer-timeout=1ms'], 'minOutputBufferTimeoutMs', 1],
    [['--output-buffer-timeout=0'], 'outputBufferTimeoutMs', 0],
    [['--max-channel-consumers=3'], 'maxChannelConsumers', 3],
    [['--statsd-address=127.0.0.1:8125'], 'statsdAddress', '127.0.0.1:8125'],
    [['--statsd-interval=10s'], 'statsdIntervalMs', 10_000],
    [['--statsd-mem-stats=false'], 'statsdMemStats', false],
    [['--statsd-prefix='], 'statsdPrefix', ''],
    [['--statsd-udp-packet-size=1400'], 'statsdUdpPacketSize', 1400],
    [['--statsd-exclude-ephemeral'], 'statsdExcludeEphemeral', true],
    [['--e2e-processing-latency-percentile=0.99'], 'e2eProcessingLatencyPercentiles', [0.99]],
    [['--e2e-processing-latency-window-time=1m'], 'e2eProcessingLatencyWindowTimeMs', 60_000],
    [['--tls-cert=/c.pem', '--tls-key=/k.pem'], 'tlsCert', '/c.pem'],
    [['--tls-cert=/c.pem', '--tls-key=/k.pem'], 'tlsKey', '/k.pem'],
    [['--tls-root-ca-file=/ca.pem'], 'tlsRootCaFile', '/ca.pem'],
    [[...CERT, '--tls-client-auth-policy=require-verify'], 'tlsClientAuthPolicy', 'require-verify'],
    [[...CERT, '--tls-required'], 'tlsRequired', 'true'],
    [['--tls-min-version=TLS1.2'], 'tlsMinVersion', 'tls1.2'],
    [['--deflate=false'], 'deflate', false],
    [['--max-deflate-level=9'], 'maxDeflateLevel', 9],
    [['-snappy=f'], 'snappy', false],
    [['--transport-workers=2'], 'transportWorkers', 2],
    [['--http-auth-token=a', '--http-auth-token', 'b'], 'httpAuthTokens', ['a', 'b']],
    [['--http-auth-token=a', '--http-auth-reads'], 'httpAuthReads', true],
    [['--lookupd-tls'], 'lookupdTls', true],
    [['--max-connections=100'], 'maxConnections', 100],
    [['--max-attempts=5'], 'maxAttempts', 5],
    [['--dead-letter-topic=dead'], 'deadLetterTopic', 'dead'],
    [['--max-depth=10'], 'maxDepth', 10],
    [['--max-bytes=1000'], 'maxBytes', 1000],
    [['--overflow=drop_oldest'], 'overflow', 'drop_oldest'],
    [['--message-ttl=1h30m'], 'messageTtlMs', 5_400_000],
    [['--retention=24h'], 'retentionMs', 86_400_000],
    [['--lookupd-tls', '--lookupd-tls-root-ca-file=/ca.pem'], 'lookupdTlsRootCaFile', '/ca.pem'],
    [['--lookupd-http-auth-token=tok'], 'lookupdHttpAuthToken', 'tok'],
    [[...GROUP], 'haGroup', 'g'],
    [[...GROUP, '--ha-member-id=m1'], 'haMemberId', 'm1'],
    [[...GROUP, '--etcd-endpoints=http://f:2379'], 'etcdEndpoints', ['http://e:2379', 'http://f:2379']],
    [[...GROUP], 'replicationAddress', '10.0.0.1:4153'],
    [[...GROUP, '--replication-ack=async'], 'replicationAck', 'async'],
    [[...GROUP, '--min-insync=2'], 'minInsync', 2],
    [[...GROUP, '--replication-timeout=3s'], 'replicationTimeoutMs', 3_000],
    [[...GROUP, '--ha-lease-ttl=2s'], 'haLeaseTtlMs', 2_000],
  ];

  it('checks the replication flags together, with clear errors; sync acks answer no publish from memory', () => {
    const message = (...argv: string[]) => thrown(() => parseNsqdArgs(argv)).message;
    expect(message('--etcd-endpoints=http://e:2379')).toBe('--etcd-endpoints needs --ha-group');
    expect(message('--replication-address=h:1')).toBe('--replication-address needs --ha-group');
    expect(message('--ha-group=a/b')).toBe('--ha-group must be 1-64 of [A-Za-z0-9_.-]');
    expect(message('--ha-group=g', '--replication-address=h:1')).toBe('--ha-group needs --etcd-endpoints');
    expect(message(...GROUP, '--etcd-endpoints=e:2379')).toBe('--etcd-endpoints: "e:2379" is not http(s)://host:port');
    expect(message('--ha-group=g', '--etcd-endpoints=http://e:1', '--replication-address=h:0')).toBe(
      '--ha-group needs --replication-address=<addr>:<port> (a fixed port)',
    );
    expect(message(...GROUP, '--ha-lease-ttl=1500ms')).toBe('--ha-lease-ttl must be whole seconds, at least 1s');
    expect(message(...GROUP, '--replication-ack=maybe')).toMatch(/must be sync or async/);
    expect(message(...GROUP, '--min-insync=0')).toBe('--min-insync must be >= 1');
    expect(message(...GROUP, '--min-insync=2', '--replication-ack=async')).toBe(
      '--min-insync above 1 needs --replication-ack=sync',
    );
    expect(options(...GROUP).memQueueSize).toBe(0);
    expect(options(...GROUP, '--replication-ack=async').memQueueSize).toBe(10_000);
    expect(options().memQueueSize).toBe(10_000);
  });

  it('covers every option in the table above', () => {
    expect(new Set(ROWS.map((r) => r[1]))).toEqual(new Set(Object.keys(defaultNsqdOptions())));
  });

  it.each(ROWS)('%j sets %s', (argv, field, value) => {
    const o = options(...argv);
    expect(o[field]).toEqual(value);
    // Everything else keeps its default.
    // Flags that need another flag: those pairs are reset on both sides.
    const reset = {
      tlsCert: '',
      tlsKey: '',
      tlsRequired: 'false',
      httpAuthTokens: [],
      lookupdTls: false,
      ...(o.haGroup === '' ? {} : { haGroup: '', etcdEndpoints: [], replicationAddress: '', memQueueSize: 0 }),
    };
    const rest = { ...o, [field]: undefined, ...reset };
    const defaults = { ...defaultNsqdOptions(), [field]: undefined, ...reset };
    expect(rest).toEqual(defaults);
  });

  it('accepts one or two dashes, = or a space, in any mix', () => {
    const o = options(
      '-tcp-address',
      '127.0.0.1:1',
      '--http-address=127.0.0.1:2',
      '-mem-queue-size=5',
      '--max-rdy-count',
      '9',
    );
    expect([o.tcpAddress, o.httpAddress, o.memQueueSize, o.maxRdyCount]).toEqual(['127.0.0.1:1', '127.0.0.1:2', 5, 9]);
  });

  it('accepts the deprecated --verbose and --worker-id', () => {
    expect(options('--verbose')).toEqual(defaultNsqdOptions());
    expect(options('--worker-id=12').nodeId).toBe(12);
    expect(options('--worker-id=12', '--node-id=13').nodeId).toBe(13);
    expect(thrown(() => parseNsqdArgs(['--worker-id=1024'])).message).toBe('--node-id must be [0,1024)');
  });

  it('takes every tls-required spelling NSQ takes', () => {
    expect(options(...CERT, '--tls-required=tcp-https').tlsRequired).toBe('tcp-https');
    expect(options(...CERT, '--tls-required=TCP-HTTPS').tlsRequired).toBe('tcp-https');
    expect(options(...CERT, '--tls-required=T').tlsRequired).toBe('true');
    expect(options('--tls-required=false').tlsRequired).toBe('false');
    expect(thrown(() => parseNsqdArgs(['--tls-required=maybe'])).message).toBe(
      'invalid boolean value "maybe" for -tls-required: must be true, false or tcp-https',
    );
    // A bool-style flag never takes the next argument, so this is a stray positional.
    expect(thrown(() => parseNsqdArgs([...CERT, '--tls-required', 'tcp-https'])).message).toBe(
      'unexpected argument "tcp-https" (-tls-required takes no separate value: write -tls-required=tcp-https)',
    );
  });

  it('sorts command-line e2e percentiles largest first, like NSQ', () => {
    expect(
      options('--e2e-processing-latency-percentile=0.5,1', '--e2e-processing-latency-percentile', '0.99')
        .e2eProcessingLatencyPercentiles,
    ).toEqual([1, 0.99, 0.5]);
  });

  it('answers --version and --help', () => {
    expect(parseNsqdArgs(['--version'])).toEqual({ kind: 'version' });
    expect(parseNsqdArgs(['-version', '--mem-queue-size=1'])).toEqual({ kind: 'version' });
    expect(parseNsqdArgs(['--version=false']).kind).toBe('run');
    // As in NSQ, --version wins over a config file it never reads...
    expect(parseNsqdArgs(['--version', '--config=/nonexistent.toml'])).toEqual({ kind: 'version' });
    // ...but not over a flag error.
    expect(() => parseNsqdArgs(['--version', '--bogus'])).toThrow('flag provided but not defined: -bogus');
    for (const h of ['-h', '--help', '-help']) expect(parseNsqdArgs([h])).toEqual({ kind: 'help', text: nsqdUsage() });
  });

  it('prints a Go-style usage listing every flag', () => {
    const text = nsqdUsage();
    expect(text.startsWith('Usage of nsqd:\n  -auth-http-address value\n')).toBe(true);
    for (const flag of NSQD_FLAGS) expect(text).toContain(`\n  -${flag.spec.name}`);
    expect(text).toContain(
      '  -mem-queue-size int\n    \tnumber of messages to keep in memory (per topic/channel) (default 10000)\n',
    );
    expect(text).toContain('  -msg-timeout duration\n');
    expect(text).toContain('(default 1m0s)');
    expect(text).toContain('(default "0.0.0.0:4150")');
  });

  it('formats the version line', () => {
    expect(nsqdVersionLine()).toBe(`nsqd v1.3.0 (built w/node${process.versions.node})`);
    expect(nsqdVersionLine()).toMatch(/^nsqd v1\.3\.0 \(built w\/node\d+\.\d+\.\d+\)$/);
  });

  it.each([
    [['--bogus'], 'flag provided but not defined: -bogus', FlagErrorCode.UndefinedFlag],
    [['--mem-queue-size=abc'], 'invalid value "abc" for flag -mem-queue-size: parse error', FlagErrorCode.InvalidValue],
    [
      ['--max-rdy-count', 'abc'],
      'invalid value "abc" for flag -max-rdy-count: parse error',
      FlagErrorCode.InvalidValue,
    ],
    [['--msg-timeout=60'], 'invalid value "60" for flag -msg-timeout: parse error', FlagErrorCode.InvalidValue],
    [['--deflate=yes'], 'invalid boolean value "yes" for -deflate: parse error', FlagErrorCode.InvalidValue],
    [['--tcp-address'], 'flag needs an argument: -tcp-address', FlagErrorCode.MissingValue],
    [['---tcp-address=x'], 'bad flag syntax: ---tcp-address=x', FlagErrorCode.BadSyntax],
    [['run'], 'unexpected argument "run"', FlagErrorCode.UnexpectedArgument],
    [
      ['--log-level=loud'],
      'invalid value "loud" for flag -log-level: invalid log level \'loud\' (debug, info, warn, error, fatal)',
      FlagErrorCode.InvalidValue,
    ],
    [
      ['--tls-min-version=ssl3.0'],
      'invalid value "ssl3.0" for flag -tls-min-version: unknown tlsVersionOption "ssl3.0" (tls1.0, tls1.1, tls1.2, tls1.3)',
      FlagErrorCode.InvalidValue,
    ],
    [
      ['--e2e-processing-latency-percentile=0.9,high'],
      'invalid value "0.9,high" for flag -e2e-processing-latency-percentile: parse error',
      FlagErrorCode.InvalidValue,
    ],
  ])('refuses the command line %j (exit 2)', (argv, message, code) => {
    const e = thrown(() => parseNsqdArgs(argv));
    expect(e.message).toBe(message);
    expect(e.code).toBe(code);
    expect(e.exitCode).toBe(2);
  });
});

describe('nsqd start-up checks', () => {
  it.each([
    [['--node-id=1024'], '--node-id must be [0,1024)'],
    [['--node-id=-1'], '--node-id must be [0,1024)'],
    [['--max-deflate-level=0'], '--max-deflate-level must be [1,9]'],
    [['--max-deflate-level=10'], '--max-deflate-level must be [1,9]'],
    [['--tls-required'], 'cannot require TLS client connections without TLS key and cert'],
    [['--tls-required=tcp-https'], 'cannot require TLS client connections without TLS key and cert'],
    [['--tls-client-auth-policy=require'], 'cannot require TLS client connections without TLS key and cert'],
    [
      [...CERT, '--tls-client-auth-policy=required'],
      '--tls-client-auth-policy must be require or require-verify, not "required"',
    ],
    [['--tls-cert=/c.pem'], '--tls-cert and --tls-key must be given together'],
    [['--tls-key=/k.pem'], '--tls-cert and --tls-key must be given together'],
    [['--http-auth-reads'], '--http-auth-reads needs --http-auth-token'],
    [['--http-auth-token=', '--http-auth-reads'], '--http-auth-reads needs --http-auth-token'],
    [['--lookupd-tls-root-ca-file=/ca.pem'], '--lookupd-tls-root-ca-file needs --lookupd-tls'],
    [['--e2e-processing-latency-percentile=0'], 'invalid E2E processing latency percentile: 0 (each must be in (0,1])'],
    [
      ['--e2e-processing-latency-percentile=1.5'],
      'invalid E2E processing latency percentile: 1.5 (each must be in (0,1])',
    ],
    [
      ['--e2e-processing-latency-percentile=nan'],
      'invalid E2E processing latency percentile: NaN (each must be in (0,1])',
    ],
    [['--msg-timeout=-1s'], '--msg-timeout must not be negative'],
    [['--mem-queue-size=-1'], '--mem-queue-size must be >= 0'],
    [['--max-bytes-per-file=0'], '--max-bytes-per-file must be >= 1'],
    [['--queue-scan-worker-pool-max=0'], '--queue-scan-worker-pool-max must be >= 1'],
    [['--broadcast-tcp-port=65536'], '--broadcast-tcp-port must be [0,65535]'],
    [['--statsd-udp-packet-size=0'], '--statsd-udp-packet-size must be >= 1'],
  ])('refuses %j (exit 1)', (argv, message) => {
    const e = thrown(() => parseNsqdArgs(argv));
    expect(e.message).toBe(message);
    expect(e.code).toBe(FlagErrorCode.InvalidOption);
    expect(e.exitCode).toBe(1);
  });

  it('lets a client auth policy turn tls-required on, as NSQ does', () => {
    expect(options(...CERT, '--tls-client-auth-policy=require').tlsRequired).toBe('true');
    expect(options(...CERT, '--tls-client-auth-policy=require', '--tls-required=tcp-https').tlsRequired).toBe(
      'tcp-https',
    );
    expect(options(...CERT).tlsRequired).toBe('false');
  });

  it('validateNsqdOptions accepts the defaults and returns a copy', () => {
    const input = defaultNsqdOptions();
    const out = validateNsqdOptions(input);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
    expect(out.lookupdTcpAddresses).not.toBe(input.lookupdTcpAddresses);
    expect(() => validateNsqdOptions({ ...input, logLevel: 'loud' as never })).toThrow("invalid log level 'loud'");
    expect(() => validateNsqdOptions({ ...input, tlsRequired: 'yes' as never })).toThrow(
      '--tls-required must be true, false or tcp-https',
    );
    expect(() => validateNsqdOptions({ ...input, tlsMinVersion: 'tls9' })).toThrow('unknown tlsVersionOption "tls9"');
    expect(() => validateNsqdOptions({ ...input, nodeId: 1.5 })).toThrow('--node-id must be [0,1024)');
  });
});

describe('--config TOML', () => {
  it('reads NSQ nsqd.cfg.example keys', () => {
    const path = configFile(`
log_level = "DEBUG"
log_prefix = "[n] "
id = 42
tcp_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"
https_address = ""
broadcast_address = "host1"
broadcast_tcp_port = 5000
broadcast_http_port = 5001
nsqlookupd_tcp_addresses = ["127.0.0.1:4160", "127.0.0.1:4162"]
auth_http_addresses = ["127.0.0.1:4181"]
http_client_connect_timeout = "3s"
http_client_request_timeout = "4s"
data_path = "/var/lib/nsq"
mem_queue_size = 1000
max_bytes_per_file = 1048576
sync_every = 10
sync_timeout = "1s"
queue_scan_worker_pool_max = 2
queue_scan_selection_count = 10
msg_timeout = "30s"
max_msg_timeout = "10m"
max_msg_size = 1024768
max_req_timeout = "30m"
max_body_size = 5123840
max_heartbeat_interval = "45s"
max_rdy_count = 100
max_output_buffer_size = 1024
max_output_buffer_timeout = "1s"
min_output_buffer_timeout = "10ms"
output_buffer_timeout = "100ms"
max_channel_consumers = 50
statsd_address = "127.0.0.1:8125"
statsd_prefix = "nsq.%s"
statsd_interval = "30s"
statsd_mem_stats = false
statsd_udp_packet_size = 1400
statsd_exclude_ephemeral = true
e2e_processing_latency_percentiles = [1.0, 0.99, 0.95]
e2e_processing_latency_window_time = "5m"
tls_cert = "/c.pem"
tls_key = "/k.pem"
tls_client_auth_policy = "require-verify"
tls_root_ca_file = "/ca.pem"
tls_required = true
tls_min_version = "tls1.2"
deflate = false
max_deflate_level = 3
snappy = false
transport_workers = 2
verbose = true
`);
    const { options: o, warnings } = run('--config', path);
    expect(warnings).toEqual([]);
    expect(o).toEqual({
      tcpAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      httpsAddress: '',
      broadcastAddress: 'host1',
      broadcastTcpPort: 5000,
      broadcastHttpPort: 5001,
      lookupdTcpAddresses: ['127.0.0.1:4160', '127.0.0.1:4162'],
      authHttpAddresses: ['127.0.0.1:4181'],
      httpClientConnectTimeoutMs: 3000,
      httpClientRequestTimeoutMs: 4000,
      dataPath: '/var/lib/nsq',
      nodeId: 42,
      logLevel: 'debug',
      logPrefix: '[n] ',
      memQueueSize: 1000,
      maxBytesPerFile: 1048576,
      syncEvery: 10,
      syncTimeoutMs: 1000,
      queueScanWorkerPoolMax: 2,
      queueScanSelectionCount: 10,
      msgTimeoutMs: 30_000,
      maxMsgTimeoutMs: 600_000,
      maxMsgSize: 1024768,
      maxReqTimeoutMs: 1_800_000,
      maxBodySize: 5123840,
      maxHeartbeatIntervalMs: 45_000,
      maxRdyCount: 100,
      maxOutputBufferSize: 1024,
      maxOutputBufferTimeoutMs: 1000,
      minOutputBufferTimeoutMs: 10,
      outputBufferTimeoutMs: 100,
      maxChannelConsumers: 50,
      maxConnections: 0,
      maxAttempts: 0,
      deadLetterTopic: '',
      maxDepth: 0,
      maxBytes: 0,
      overflow: 'reject',
      messageTtlMs: 0,
      retentionMs: 0,
      statsdAddress: '127.0.0.1:8125',
      statsdIntervalMs: 30_000,
      statsdMemStats: false,
      statsdPrefix: 'nsq.%s',
      statsdUdpPacketSize: 1400,
      statsdExcludeEphemeral: true,
      e2eProcessingLatencyPercentiles: [1, 0.99, 0.95],
      e2eProcessingLatencyWindowTimeMs: 300_000,
      tlsCert: '/c.pem',
      tlsKey: '/k.pem',
      tlsRootCaFile: '/ca.pem',
      tlsClientAuthPolicy: 'require-verify',
      tlsRequired: 'true',
      tlsMinVersion: 'tls1.2',
      deflate: false,
      maxDeflateLevel: 3,
      snappy: false,
      transportWorkers: 2,
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
    } satisfies NsqdOptions);
  });

  it('lets command-line flags override config values, arrays included', () => {
    const path = configFile(`
mem_queue_size = 1000
msg_timeout = "30s"
nsqlookupd_tcp_addresses = ["a:4160", "b:4160"]
`);
    const o = options(`--config=${path}`, '--mem-queue-size=5', '--lookupd-tcp-address=c:4160');
    expect(o.memQueueSize).toBe(5);
    expect(o.msgTimeoutMs).toBe(30_000);
    expect(o.lookupdTcpAddresses).toEqual(['c:4160']);
    // Flags before --config count the same as flags after it.
    expect(options('--mem-queue-size=6', '-config', path).memQueueSize).toBe(6);
  });

  it('accepts the other spellings of the renamed keys', () => {
    expect(options(`--config=${configFile('lookupd_tcp_addresses = ["a:4160"]')}`).lookupdTcpAddresses).toEqual([
      'a:4160',
    ]);
    expect(options(`--config=${configFile('lookupd_tcp_address = "a:4160,b:4160"')}`).lookupdTcpAddresses).toEqual([
      'a:4160',
      'b:4160',
    ]);
    expect(options(`--config=${configFile('node_id = 9')}`).nodeId).toBe(9);
    expect(options(`--config=${configFile('worker_id = 8')}`).nodeId).toBe(8);
    expect(options(`--config=${configFile('auth_http_address = ["x:1"]')}`).authHttpAddresses).toEqual(['x:1']);
    expect(
      options(`--config=${configFile('e2e_processing_latency_percentile = 0.5')}`).e2eProcessingLatencyPercentiles,
    ).toEqual([0.5]);
    expect(
      options(`--config=${configFile('e2e_processing_latency_percentiles = "0.5,0.9"')}`)
        .e2eProcessingLatencyPercentiles,
    ).toEqual([0.5, 0.9]);
    const both = thrown(() => parseNsqdArgs([`--config=${configFile('id = 1\nnode_id = 2')}`]));
    expect(both.message).toBe('config keys id and node_id both set -node-id; keep one');
    expect(both.exitCode).toBe(1);
  });

  it('reads durations as Go strings or integer milliseconds', () => {
    const o = options(`--config=${configFile('msg_timeout = 1500\nsync_timeout = "1m30s"\nmax_req_timeout = "0"')}`);
    expect([o.msgTimeoutMs, o.syncTimeoutMs, o.maxReqTimeoutMs]).toEqual([1500, 90_000, 0]);
  });

  it('reads NSQ custom values as strings, booleans or Go text', () => {
    const certs = 'tls_cert = "/c"\ntls_key = "/k"\n';
    expect(options(`--config=${configFile(`${certs}tls_required = "tcp-https"`)}`).tlsRequired).toBe('tcp-https');
    expect(options(`--config=${configFile(`${certs}tls_required = false`)}`).tlsRequired).toBe('false');
    expect(options(`--config=${configFile('tls_min_version = ""')}`).tlsMinVersion).toBe('tls1.0');
    expect(options(`--config=${configFile('deflate = "f"\nmem_queue_size = "0x10"')}`)).toMatchObject({
      deflate: false,
      memQueueSize: 16,
    });
  });

  it('warns about keys that set nothing', () => {
    expect(run(`--config=${configFile('mem_queue_size = 1\nmem_queue = 2\n[extra]\nx = 1')}`).warnings).toEqual([
      'config key mem_queue is not an nsqd option; ignored',
      'config key extra is not an nsqd option; ignored',
    ]);
  });

  it.each([
    ['mem_queue_size = "lots"', 'invalid value "lots" for config key mem_queue_size: parse error'],
    ['mem_queue_size = 1.5', 'invalid value 1.5 for config key mem_queue_size: expected an integer'],
    ['tcp_address = 4150', 'invalid value 4150 for config key tcp_address: expected a string'],
    ['deflate = 1', 'invalid value 1 for config key deflate: expected true or false'],
    ['msg_timeout = "60"', 'invalid value "60" for config key msg_timeout: parse error'],
    [
      'msg_timeout = true',
      'invalid value true for config key msg_timeout: expected a duration string such as "60s" or an integer number of milliseconds',
    ],
    [
      'nsqlookupd_tcp_addresses = [4160]',
      'invalid value [4160] for config key nsqlookupd_tcp_addresses: expected an array of strings',
    ],
    [
      'e2e_processing_latency_percentiles = ["high"]',
      'invalid value ["high"] for config key e2e_processing_latency_percentiles: expected an array of numbers',
    ],
    ['tls_required = "maybe"', 'invalid value "maybe" for config key tls_required: must be true, false or tcp-https'],
    [
      'log_level = "loud"',
      `invalid value "loud" for config key log_level: invalid log level 'loud' (debug, info, warn, error, fatal)`,
    ],
    ['log_level = ["info"]', 'invalid value ["info"] for config key log_level: expected a string'],
  ])('refuses %s', (toml, message) => {
    const e = thrown(() => parseNsqdArgs([`--config=${configFile(toml)}`]));
    expect(e.message).toBe(message);
    expect(e.code).toBe(FlagErrorCode.InvalidConfig);
    expect(e.exitCode).toBe(1);
  });

  it('applies the start-up checks to config values', () => {
    const e = thrown(() => parseNsqdArgs([`--config=${configFile('max_deflate_level = 12')}`]));
    expect(e.message).toBe('--max-deflate-level must be [1,9]');
    expect(thrown(() => parseNsqdArgs([`--config=${configFile('id = 2000')}`])).message).toBe(
      '--node-id must be [0,1024)',
    );
  });

  it('reports a missing or malformed file', () => {
    const missing = join(dir, 'missing.toml');
    const e = thrown(() => parseNsqdArgs(['--config', missing]));
    expect(e.code).toBe(FlagErrorCode.InvalidConfig);
    expect(e.message).toMatch(new RegExp(`^failed to load config file ${missing} - .*no such file`));
    const bad = configFile('mem_queue_size = ');
    expect(thrown(() => parseNsqdArgs(['--config', bad])).message).toMatch(
      new RegExp(`^failed to load config file ${bad} - Invalid TOML document`),
    );
  });
});
