#!/usr/bin/env node
/**
 * `npm run bench`: MPUB ingest / consume / publish+consume load, HTTP publish, /stats and /metrics
 * scrape latency, @nsq-ts/client vs nsqjs, @nsq-ts/client over TLS / snappy / deflate, issue 9's
 * performance scenarios, and the storage ones (overflow to disk, --mem-queue-size=0, durable
 * ingest, soak with restarts), against nsqd (spawned here) or any NSQ-compatible broker on
 * loopback. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { makeBodies } from './lib/bodies.js';
import { cpuBetween, httpRequest, procStats, startBroker, systemCpu } from './lib/broker.js';
import { formatSummary, summarizeFile } from './lib/cpuprofile.js';
import { CLIENT_WORKER, Generator, HTTP_WORKER, sum, waitReady } from './lib/generators.js';
import { fanout, idleConns, idleTopics, latency, PERF_SCENARIOS, pubSingle, rss1m } from './lib/perf.js';
import { parseScaleVariants, SCALE_SCENARIOS, scale } from './lib/scale.js';
import { soak, soakDrainLimitMs } from './lib/soak.js';
import { STARTUP_SCENARIOS, startup } from './lib/startup.js';
import { durable, mem0, overflow, STORAGE_SCENARIOS, storageBroker } from './lib/storage.js';
import { writeChart } from './lib/svg.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const BASE_SCENARIOS = ['publish', 'consume', 'both', 'http-publish', 'stats-scrape', 'clients', 'transport'];
/**
 * Issue 9's scenarios (lib/perf.js; `--scenario perf` runs just these) and the storage ones
 * (lib/storage.js, lib/soak.js; `--scenario storage`).
 */
const SCENARIOS = [
  ...BASE_SCENARIOS,
  ...PERF_SCENARIOS,
  ...STORAGE_SCENARIOS,
  ...SCALE_SCENARIOS,
  ...STARTUP_SCENARIOS,
];
/** Scenarios that start their own daemons: no broker of the run's (lib/scale.js, lib/startup.js). */
const OWN_DAEMONS = ['scale', 'startup'];
/** Left out of `all` (run them by name or with their group): minutes each. */
const SLOW_SCENARIOS = ['overflow', 'soak', 'scale'];
const GROUPS = { perf: PERF_SCENARIOS, storage: STORAGE_SCENARIOS };
const CLIENTS = ['ours', 'nsqjs'];
/** transport scenario: what each mode asks for in IDENTIFY (deflate at --deflate-level). */
const TRANSPORT_MODES = {
  plain: {},
  snappy: { snappy: true },
  deflate: { deflate: true },
  tls: { tls: true },
  'tls+snappy': { tls: true, snappy: true },
  'tls+deflate': { tls: true, deflate: true },
};
const MiB = 1024 * 1024;

const HELP = `usage: node bench/run.js [options]

  --scenario NAME[,NAME...]             publish|consume|both|http-publish|stats-scrape|clients|
                                        transport|fanout|pub-single|latency|rss-1m|idle-conns|
                                        idle-topics|overflow|mem0|durable|soak|scale|startup, or a
                                        group: all (default; without overflow, soak and
                                        scale), perf (fanout … idle-topics), storage
                                        (overflow … soak)
  --duration SECONDS                    length of each timed phase (default 10)
  --nsqd-tcp-address HOST:PORT          use this running broker (with --nsqd-http-address)
  --nsqd-http-address HOST:PORT         its HTTP address (GET /ping must answer 200)
  --nsqd-bin PATH                       broker to spawn (default packages/nsqd/bin/nsqd.js;
                                        a non-.js path is executed directly)
  --mem-queue-size N                    --mem-queue-size for the spawned broker (default 10000000;
                                        the storage scenarios set their own)
  --messages N                          consume, mem0: messages to pre-publish (default: as many
                                        as the publishers send in --duration seconds);
                                        overflow: messages put on disk (default 10000000)
  --connections N                       publisher connections and consumer connections (default 2)
  --batch-size N                        messages per MPUB (default 200)
  --msg-size BYTES                      message body size (default 200)
  --pipeline N                          MPUBs outstanding per publisher connection (default 4)
  --rdy N                               RDY per consumer connection (default 2500)
  --heartbeat-interval MS               IDENTIFY heartbeat_interval (default: the broker's)
  --http-clients LIST                   http-publish: concurrent keep-alive clients per phase
                                        (default 1,16)
  --http-procs N                        http-publish: at most N generator processes per phase,
                                        the clients spread over them (default: cores, max 4)
  --http-client agent|fetch             http-publish: node:http + keep-alive Agent, or Node's
                                        built-in (undici) fetch (default agent)
  --scrape-topics N                     stats-scrape: topics to create (default 1000)
  --scrape-channels N                   stats-scrape: channels per topic (default 3)
  --scrape-messages N                   stats-scrape: messages published per topic (default 5)
  --scrape-count N                      stats-scrape: sequential GETs per endpoint (default 20)
  --clients LIST                        clients: which clients (default ours,nsqjs)
  --client-window N                     clients: single publishes outstanding (default 1000)
  --client-messages N                   clients: messages pre-published per consumer (default 1000000)
  --transport-modes LIST                transport: modes, any of ${Object.keys(TRANSPORT_MODES).join(',')}
                                        (default all six)
  --transport-duration SECONDS          transport: length of each publish phase and cap of each
                                        consume phase (default 5)
  --transport-messages N                transport: messages pre-published per consume phase
                                        (default 1000000)
  --transport-body json|x               transport: message bodies (default json: different,
                                        compressible records; x: all 'x', compresses ~100×)
  --deflate-level N                     transport: deflate level the client asks for (default 6)
  --tls-ca FILE                         transport on an external broker: the CA of its
                                        certificate (without it the TLS modes are skipped)
  --fanout-channels LIST                fanout: channel counts, one phase each (default 1,2,4)
  --pub-connections LIST                pub-single: connection counts, one phase each (default 1,2)
  --pub-window N                        pub-single: PUBs in flight per connection (default 64)
  --latency-rates LIST                  latency: offered msgs/s, one phase each
                                        (default 10000,50000,100000)
  --latency-warmup SECONDS              latency: first seconds left out of the percentiles (default 1)
  --rss-messages N                      rss-1m: messages to queue (default 1000000)
  --settle SECONDS                      rss-1m: wait after the publish before the last RSS (default 10)
  --idle-connections N                  idle-conns: connections to open (default 10000)
  --idle-procs N                        idle-conns: generator processes (default 4)
  --idle-heartbeat-interval MS          idle-conns: IDENTIFY heartbeat_interval (default 60000)
  --idle-topics N                       idle-topics: topics to create (default 10000)
  --idle-topic-channels N               idle-topics: channels per topic (default 0)
  --idle-seconds SECONDS                idle-conns / idle-topics: idle window measured (default 10)
  --overflow-mem-queue-size N           overflow: the broker's --mem-queue-size (default 10000)
  --durable-connections LIST            durable: publisher connections, one phase each
                                        (default 1,8,16)
  --minutes M                           soak: length of the mixed load (default 30)
  --restart-every SECONDS               soak: SIGTERM restart cycle (default: a third of the
                                        run, 20..180)
  --soak-rate N                         soak: msgs/s offered by all publishers (default 10000)
  --soak-mem-queue-size N               soak: the broker's --mem-queue-size (default 10000)
  --soak-msg-timeout MS                 soak: the broker's --msg-timeout (default 5000)
  --soak-rdy N                          soak: RDY per consumer (default 1000)
  --startup-runs N                      startup: starts per target (default 20)
  --startup-topics N                    startup: topics in the data path of its second nsqd
                                        target (default 100)
  --scale-variants LIST                 scale: nsqd processes per variant, each behind one
                                        nsqlookupd; N:pin pins nsqd i to CPU i mod cores with
                                        taskset (default 1,2,2:pin)
  --scale-connections N                 scale: publisher and consumer connections in all, split
                                        evenly over the nsqds (default 4)
  --scale-pool on|off                   scale: a fourth phase per variant through @nsq-ts/client
                                        (2 Producers pooled over every nsqd, 2 Consumers
                                        discovering them via nsqlookupd; default on)
  --broker-cpu-prof DIR                 run the spawned broker under node --cpu-prof, profiles
                                        to DIR; a summary of each is printed and kept in the JSON
  --out DIR                             where the JSON and SVG go (default bench/results)
  --help
`;

function parseArgs(argv) {
  const opts = {
    scenario: 'all',
    duration: 10,
    nsqdTcpAddress: null,
    nsqdHttpAddress: null,
    nsqdBin: path.join(ROOT, 'packages/nsqd/bin/nsqd.js'),
    memQueueSize: 10_000_000,
    messages: 0,
    connections: 2,
    batchSize: 200,
    msgSize: 200,
    pipeline: 4,
    rdy: 2500,
    heartbeatInterval: 0,
    httpClients: '1,16',
    httpProcs: Math.max(1, Math.min(4, os.cpus().length)),
    httpClient: 'agent',
    scrapeTopics: 1000,
    scrapeChannels: 3,
    scrapeMessages: 5,
    scrapeCount: 20,
    clients: CLIENTS.join(','),
    clientWindow: 1000,
    clientMessages: 1_000_000,
    transportModes: Object.keys(TRANSPORT_MODES).join(','),
    transportDuration: 5,
    transportMessages: 1_000_000,
    transportBody: 'json',
    deflateLevel: 6,
    tlsCa: null,
    fanoutChannels: '1,2,4',
    pubConnections: '1,2',
    pubWindow: 64,
    latencyRates: '10000,50000,100000',
    latencyWarmup: 1,
    rssMessages: 1_000_000,
    settle: 10,
    idleConnections: 10_000,
    idleProcs: 4,
    idleHeartbeatInterval: 60_000,
    idleTopics: 10_000,
    idleTopicChannels: 0,
    idleSeconds: 10,
    overflowMemQueueSize: 10_000,
    durableConnections: '1,8,16',
    minutes: 30,
    restartEvery: 0,
    soakRate: 10_000,
    soakMemQueueSize: 10_000,
    soakMsgTimeout: 5_000,
    soakRdy: 1000,
    startupRuns: 20,
    startupTopics: 100,
    scaleVariants: '1,2,2:pin',
    scaleConnections: 4,
    scalePool: 'on',
    brokerCpuProf: null,
    out: path.join(BENCH_DIR, 'results'),
  };
  const numeric = new Set([
    'duration',
    'memQueueSize',
    'messages',
    'connections',
    'batchSize',
    'msgSize',
    'pipeline',
    'rdy',
    'heartbeatInterval',
    'httpProcs',
    'scrapeTopics',
    'scrapeChannels',
    'scrapeMessages',
    'scrapeCount',
    'clientWindow',
    'clientMessages',
    'transportDuration',
    'transportMessages',
    'deflateLevel',
    'pubWindow',
    'latencyWarmup',
    'rssMessages',
    'settle',
    'idleConnections',
    'idleProcs',
    'idleHeartbeatInterval',
    'idleTopics',
    'idleTopicChannels',
    'idleSeconds',
    'overflowMemQueueSize',
    'minutes',
    'restartEvery',
    'soakRate',
    'soakMemQueueSize',
    'soakMsgTimeout',
    'soakRdy',
    'scaleConnections',
    'startupRuns',
    'startupTopics',
  ]);
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    let value;
    const eq = arg.indexOf('=');
    if (eq >= 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    } else {
      value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
    }
    const key = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in opts)) throw new Error(`unknown option ${arg}\n\n${HELP}`);
    if (numeric.has(key)) {
      const n = Number(value);
      const zeroOk = [
        'memQueueSize',
        'messages',
        'heartbeatInterval',
        'scrapeMessages',
        'scrapeChannels',
        'latencyWarmup',
        'settle',
        'idleTopicChannels',
        'overflowMemQueueSize',
        'restartEvery',
        'soakMemQueueSize',
      ];
      const fractional = [
        'duration',
        'transportDuration',
        'latencyWarmup',
        'settle',
        'idleSeconds',
        'minutes',
      ].includes(key);
      const min = zeroOk.includes(key) ? 0 : fractional ? 0.1 : 1;
      if (!Number.isFinite(n) || n < min || (!fractional && !Number.isInteger(n))) {
        throw new Error(`${arg}: bad value ${JSON.stringify(value)}`);
      }
      opts[key] = n;
    } else {
      opts[key] = value;
    }
  }
  opts.scenarios = [];
  for (const name of String(opts.scenario)
    .split(',')
    .map((x) => x.trim())) {
    const group = name === 'all' ? SCENARIOS.filter((s) => !SLOW_SCENARIOS.includes(s)) : (GROUPS[name] ?? null);
    if (group === null && !SCENARIOS.includes(name)) {
      throw new Error(
        `--scenario must be one of ${[...SCENARIOS, 'all', ...Object.keys(GROUPS)].join(', ')} (or a list)`,
      );
    }
    for (const s of group ?? [name]) if (!opts.scenarios.includes(s)) opts.scenarios.push(s);
  }
  const numList = (key, min) => {
    const list = String(opts[key])
      .split(',')
      .map((x) => Number(x.trim()));
    if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < min)) {
      throw new Error(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: a list of integers ≥ ${min}`);
    }
    return list;
  };
  opts.fanoutChannels = numList('fanoutChannels', 1);
  opts.pubConnections = numList('pubConnections', 1);
  opts.latencyRates = numList('latencyRates', 1);
  opts.durableConnections = numList('durableConnections', 1);
  opts.scaleVariants = parseScaleVariants(opts.scaleVariants, opts.scaleConnections);
  if (!['on', 'off'].includes(opts.scalePool)) throw new Error('--scale-pool must be on or off');
  opts.scalePool = opts.scalePool === 'on';
  if (opts.brokerCpuProf !== null) opts.brokerCpuProf = path.resolve(opts.brokerCpuProf);
  if (opts.idleHeartbeatInterval < 1000 || opts.idleHeartbeatInterval > 60_000) {
    throw new Error('--idle-heartbeat-interval: 1000..60000 ms (nsqd rejects anything else by default)');
  }
  if (opts.nsqdBin && !path.isAbsolute(opts.nsqdBin)) opts.nsqdBin = path.resolve(opts.nsqdBin);
  opts.httpClients = String(opts.httpClients)
    .split(',')
    .map((x) => Number(x.trim()));
  if (opts.httpClients.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--http-clients: e.g. 1,16');
  if (!['agent', 'fetch'].includes(opts.httpClient)) throw new Error('--http-client must be agent or fetch');
  opts.clients = String(opts.clients)
    .split(',')
    .map((x) => x.trim());
  if (opts.clients.some((c) => !CLIENTS.includes(c))) throw new Error(`--clients: any of ${CLIENTS.join(',')}`);
  opts.transportModes = String(opts.transportModes)
    .split(',')
    .map((x) => x.trim());
  if (opts.transportModes.some((m) => !(m in TRANSPORT_MODES))) {
    throw new Error(`--transport-modes: any of ${Object.keys(TRANSPORT_MODES).join(',')}`);
  }
  if (!['json', 'x'].includes(opts.transportBody)) throw new Error('--transport-body must be json or x');
  if (opts.deflateLevel > 9) throw new Error('--deflate-level: 1..9');
  if (opts.tlsCa !== null) opts.tlsCa = path.resolve(opts.tlsCa);
  return opts;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmt1 = (n) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1));

function log(text) {
  process.stdout.write(`${text}\n`);
}

/** A throwaway self-signed certificate for 127.0.0.1 (1 day), in a fresh temp dir. */
function makeCertificate() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsq-ts-bench-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
  );
  return { dir, cert, key };
}

function gitCommit() {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? sha : `${sha}-dirty`;
  } catch {
    return null;
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    totalMemMiB: Math.round(os.totalmem() / MiB),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

class Bench {
  constructor(opts, broker) {
    this.opts = opts;
    this.broker = broker;
    this.runId = Date.now().toString(36);
    /** Every generator ever started, so an abort can kill them all. */
    this.allGens = new Set();
    /** CA of the broker's certificate for the TLS modes (generated in main, or --tls-ca). */
    this.tlsCaFile = opts.tlsCa;
    /**
     * Daemons besides `broker` whose CPU tick() reports and subtracts from "other CPU", and whose
     * exit fails the phase: [{ name, daemon }] with daemon from startBroker (lib/scale.js).
     */
    this.watched = [];
  }

  gen(role, index, extra) {
    const o = this.opts;
    const g = new Generator(
      {
        role,
        index,
        host: this.broker?.tcp.host,
        port: this.broker?.tcp.port,
        msgSize: o.msgSize,
        batchSize: o.batchSize,
        pipeline: o.pipeline,
        rdy: o.rdy,
        heartbeatInterval: o.heartbeatInterval,
        maxMessages: 0,
        hardDeadlineMs: (o.duration * 8 + 120) * 1000,
        ...extra,
      },
      (text) => log(`  ${text}`),
    );
    this.allGens.add(g);
    g.ready.then(() => {
      if (this.identify === undefined && g.role === 'sub') this.identify = g.identify;
    });
    g.result.then(() => this.allGens.delete(g));
    return g;
  }

  gens(role, n, extra) {
    return Array.from({ length: n }, (_, i) => this.gen(role, i, extra));
  }

  killAll() {
    for (const g of this.allGens) g.kill();
  }

  brokerSample() {
    return this.broker === null || this.broker.external ? null : procStats(this.broker.pid);
  }

  checkBroker() {
    const daemons = [...(this.broker === null ? [] : [this.broker]), ...this.watched.map((w) => w.daemon)];
    for (const d of daemons) {
      if (!d.external && !d.isRunning()) {
        throw new Error(`broker exited: ${JSON.stringify(d.exitInfo())}\n${d.logTail()}`);
      }
    }
  }

  /** Each watched daemon's procStats (the scale scenario's nsqds and nsqlookupd). */
  watchedSamples() {
    return this.watched.map((w) => procStats(w.daemon.pid));
  }

  /** A best-effort HTTP call; a failure is noted once per endpoint (not every broker has them all). */
  async http(method, p) {
    const route = `${method} ${p.split('?')[0]}`;
    const note = (text) => {
      this.httpFailures ??= new Set();
      if (this.httpFailures.has(route)) return;
      this.httpFailures.add(route);
      log(`  note: ${text} (not repeated)`);
    };
    try {
      const res = await httpRequest(this.broker.http, method, p);
      if (res.status !== 200) note(`${method} ${p} → ${res.status} ${res.body.slice(0, 200)}`);
      return res.status === 200;
    } catch (err) {
      note(`${method} ${p} failed: ${err.message}`);
      return false;
    }
  }

  /** As nsq's bench does: topic and channel exist before the first message. */
  async createTopicChannel(topic, channel) {
    const q = `topic=${encodeURIComponent(topic)}`;
    await this.http('POST', `/topic/create?${q}`);
    await this.http('POST', `/channel/create?${q}&channel=${encodeURIComponent(channel)}`);
  }

  async deleteTopic(topic) {
    await this.http('POST', `/topic/delete?topic=${encodeURIComponent(topic)}`);
  }

  /**
   * Prints one progress line per second until `until()` is true or `ms` has passed. Returns the
   * per-second samples and the spawned broker's CPU use over the whole window.
   */
  async tick(label, groups, ms, until = () => false, unit = 'msg/s', format = null) {
    const start = nowMs();
    const brokerStart = this.brokerSample();
    const watchedStart = this.watchedSamples();
    let watchedPrev = watchedStart;
    const sysStart = systemCpu();
    const gensCpuStart = groups.reduce((a, g) => a + sum(g, 'cpuMs'), 0);
    const samples = [];
    let prev = groups.map((g) => sum(g, 'msgs'));
    let prevAt = start;
    let prevBroker = brokerStart;
    let nextPrint = start + 1000;
    for (;;) {
      const t = nowMs();
      const done = until() || t - start >= ms || groups.some((g) => g.some((x) => x.failed));
      if (t >= nextPrint || done) {
        const totals = groups.map((g) => sum(g, 'msgs'));
        const dt = (t - prevAt) / 1000;
        const rates = totals.map((n, i) => (dt > 0 ? (n - prev[i]) / dt : 0));
        const b = this.brokerSample();
        const cpu = cpuBetween(prevBroker, b);
        const sample = {
          t: Number(((t - start) / 1000).toFixed(2)),
          rates,
          totals,
          brokerCpuPct: cpu === null ? null : round(cpu.pct, 1),
          brokerRssKiB: b?.rssKiB ?? null,
        };
        samples.push(sample);
        const rate =
          format !== null
            ? format(rates, totals)
            : label === 'both'
              ? bothLine(rates, totals)
              : groups.length === 0
                ? 'idle'
                : `${fmtInt(rates[0]).padStart(10)} ${unit}  total ${fmtInt(totals[0])}`;
        const broker =
          b === null ? '' : `  broker cpu ${fmt1(cpu.pct).padStart(5)}% rss ${fmtInt(b.rssKiB / 1024)} MiB`;
        const ws = this.watchedSamples();
        const watchedCpu = ws.map((w, i) => cpuBetween(watchedPrev[i], w)?.pct ?? null);
        if (ws.length > 0) sample.watchedCpuPct = watchedCpu.map((x) => (x === null ? null : round(x, 1)));
        const watched =
          ws.length === 0 ? '' : `  cpu ${this.watched.map((w, i) => `${w.name} ${fmt1(watchedCpu[i])}%`).join(' ')}`;
        watchedPrev = ws;
        log(`  [${label}] ${sample.t.toFixed(1).padStart(5)}s  ${rate}${broker}${watched}`);
        prev = totals;
        prevAt = t;
        prevBroker = b;
        nextPrint += 1000;
        this.checkBroker();
      }
      if (done) {
        const end = this.brokerSample();
        const cpu = cpuBetween(brokerStart, end);
        const sysEnd = systemCpu();
        const wallMs = nowMs() - start;
        const machineCpuMs = sysStart && sysEnd ? sysEnd.busyMs - sysStart.busyMs : null;
        const gensCpuMs = groups.reduce((a, g) => a + sum(g, 'cpuMs'), 0) - gensCpuStart;
        const watchedEnd = this.watchedSamples();
        const watched = this.watched.map((w, i) => {
          const c = cpuBetween(watchedStart[i], watchedEnd[i]);
          return {
            name: w.name,
            cpuPct: c === null ? null : round(c.pct, 1),
            cpuMs: c === null ? null : round(c.cpuMs, 0),
            rssKiB: watchedEnd[i]?.rssKiB ?? null,
          };
        });
        const watchedMs = watched.reduce((a, w) => a + (w.cpuMs ?? 0), 0);
        const otherMs = machineCpuMs === null ? null : machineCpuMs - gensCpuMs - (cpu?.cpuMs ?? 0) - watchedMs;
        const external = this.broker?.external === true;
        return {
          samples,
          wallMs,
          broker: end === null ? null : { cpuPct: round(cpu.pct, 1), cpuMs: round(cpu.cpuMs, 0), rssKiB: end.rssKiB },
          /** The watched daemons over the window (lib/scale.js: each nsqd and the nsqlookupd). */
          watched,
          /** Every generator of `groups` together over the window, % of one core. */
          gensCpuPct: round((gensCpuMs / wallMs) * 100, 1),
          // Every process on the machine, to tell whether something else competed for the CPU.
          machineCpuPct: machineCpuMs === null ? null : round((machineCpuMs / wallMs) * 100, 1),
          // What neither the broker nor the generators used (only meaningful for a spawned broker).
          otherCpuPct: otherMs === null || external ? null : round(Math.max(0, otherMs / wallMs) * 100, 1),
        };
      }
      await sleep(50);
    }
  }

  async runScenario(name) {
    const topic = `bench_${name}_${this.runId}`;
    const channel = 'ch';
    const before = this.brokerSample();
    const result = { name, topic, channel, ok: true, phases: [], notes: [] };
    log(`topic ${topic}, channel ${channel}`);
    try {
      // scale starts its own nsqds and nsqlookupd and makes its topics on each nsqd.
      if (!OWN_DAEMONS.includes(name)) await this.createTopicChannel(topic, channel);
      if (name === 'publish') await this.publish(topic, result);
      else if (name === 'consume') await this.consume(topic, channel, result);
      else if (name === 'both') await this.both(topic, channel, result);
      else if (name === 'http-publish') await this.httpPublish(topic, channel, result);
      else if (name === 'stats-scrape') await this.statsScrape(topic, result);
      else if (name === 'transport') await this.transport(topic, channel, result);
      else if (name === 'clients') await this.clients(topic, channel, result);
      else if (name === 'fanout') await fanout(this, topic, result, HELPERS);
      else if (name === 'pub-single') await pubSingle(this, topic, channel, result, HELPERS);
      else if (name === 'latency') await latency(this, topic, channel, result, HELPERS);
      else if (name === 'rss-1m') await rss1m(this, topic, channel, result, HELPERS);
      else if (name === 'idle-conns') await idleConns(this, topic, result, HELPERS);
      else if (name === 'idle-topics') await idleTopics(this, topic, result, HELPERS);
      else if (name === 'overflow') await overflow(this, topic, channel, result, HELPERS);
      else if (name === 'mem0') await mem0(this, topic, channel, result, HELPERS);
      else if (name === 'durable') await durable(this, topic, channel, result, HELPERS);
      else if (name === 'soak') await soak(this, topic, channel, result, HELPERS);
      else if (name === 'scale') await scale(this, topic, channel, result, HELPERS);
      else if (name === 'startup') await startup(this, result, HELPERS);
      else throw new Error(`unknown scenario ${name}`);
    } catch (err) {
      result.ok = false;
      result.error = err.message;
      log(`  FAILED: ${err.message}`);
      this.killAll();
    }
    const after = this.brokerSample();
    if (after !== null) {
      result.broker = {
        rssKiB: after.rssKiB,
        peakRssKiB: after.peakRssKiB,
        threads: after.threads,
        cpu: cpuBetween(before, after),
      };
    }
    if (this.broker !== null && !this.broker.external && !this.broker.isRunning()) {
      result.ok = false;
      if (!result.error?.includes('broker exited')) {
        result.error = `${result.error ?? ''} broker exited: ${JSON.stringify(this.broker.exitInfo())}`.trim();
      }
      return result;
    }
    // A spawned broker is stopped after each scenario; an external one keeps running.
    if (this.broker?.external) await this.deleteTopic(topic);
    return result;
  }

  /** Waits for every generator's final result; throws if any failed. */
  async results(gens) {
    const rs = await Promise.all(gens.map((g) => g.result));
    const bad = rs.map((r, i) => (r.ok ? null : `${gens[i].name}: ${r.error}`)).filter(Boolean);
    if (bad.length > 0) throw new Error(bad.join('; '));
    return rs;
  }

  async startAll(gens) {
    await waitReady(gens);
    for (const g of gens) g.start();
  }

  /** Starts `gens`, shows progress for `ms`, stops them: { rs, timeline }. */
  async timed(label, gens, ms) {
    await this.startAll(gens);
    const timeline = await this.tick(label, [gens], ms);
    for (const g of gens) g.stop();
    return { rs: await this.results(gens), timeline };
  }

  async publishPhase(topic, label, { maxMessagesTotal = 0, ms, extra = {} }) {
    const n = this.opts.connections;
    const per = (i) =>
      maxMessagesTotal > 0 ? Math.floor(maxMessagesTotal / n) + (i < maxMessagesTotal % n ? 1 : 0) : 0;
    const pubs = Array.from({ length: n }, (_, i) => this.gen('pub', i, { topic, maxMessages: per(i), ...extra }));
    await this.startAll(pubs);
    const finished = () => pubs.every((g) => g.settled);
    const timeline = await this.tick(label, [pubs], ms, finished);
    for (const g of pubs) g.stop();
    const rs = await this.results(pubs);
    return { rs, timeline };
  }

  async publish(topic, result) {
    const { rs, timeline } = await this.publishPhase(topic, 'publish', { ms: this.opts.duration * 1000 });
    result.phases.push(phase('publish', rs, 'pub', timeline, 0));
  }

  async consume(topic, channel, result) {
    const o = this.opts;
    // Time-based by default, but never more than the broker keeps in memory.
    const pre = await this.publishPhase(topic, 'prepublish', {
      maxMessagesTotal: o.messages > 0 ? o.messages : o.memQueueSize,
      ms: o.messages > 0 ? (o.duration * 6 + 60) * 1000 : o.duration * 1000,
    });
    const prePhase = phase('prepublish', pre.rs, 'pub', pre.timeline, 0);
    result.phases.push(prePhase);
    const target = prePhase.msgs;
    if (o.messages > 0 && target < o.messages) throw new Error(`pre-published ${target} of ${o.messages} messages`);
    log(`  pre-published ${fmtInt(target)} messages; consuming them`);

    const subs = this.gens('sub', o.connections, { topic, channel });
    await this.startAll(subs);
    const limitMs = (o.duration * 6 + 30) * 1000;
    const timeline = await this.tick('consume', [subs], limitMs, () => sum(subs, 'msgs') >= target);
    const complete = sum(subs, 'msgs') >= target;
    for (const g of subs) g.stop();
    const rs = await this.results(subs);
    const p = phase('consume', rs, 'sub', timeline, 0);
    p.expected = target;
    p.complete = complete;
    if (!complete) {
      result.ok = false;
      result.notes.push(`consumed ${p.msgs} of ${target} messages within ${limitMs / 1000} s`);
    }
    result.phases.push(p);
  }

  async both(topic, channel, result) {
    const o = this.opts;
    const subs = this.gens('sub', o.connections, { topic, channel });
    const pubs = this.gens('pub', o.connections, { topic });
    await waitReady([...subs, ...pubs]);
    for (const g of subs) g.start();
    for (const g of pubs) g.start();
    const timeline = await this.tick('both', [pubs, subs], o.duration * 1000);
    for (const g of pubs) g.stop();
    for (const g of subs) g.stop();
    const [prs, srs] = await Promise.all([this.results(pubs), this.results(subs)]);
    const inPhase = phase('in', prs, 'pub', timeline, 0);
    const outPhase = phase('out', srs, 'sub', timeline, 1);
    result.phases.push(inPhase, outPhase);
    result.backlog = inPhase.msgs - outPhase.msgs;
  }

  // ---- http-publish ---------------------------------------------------------------------------

  /** A generator forked from another worker script (http-worker.js, client-worker.js). */
  worker(script, role, index, name, extra) {
    return this.gen(role, index, { worker: script, name, http: this.broker.http, ...extra });
  }

  /**
   * POST /pub and binary POST /mpub with 1 and 16 (--http-clients) keep-alive clients, each
   * one request at a time, spread over at most --http-procs processes. Each phase publishes to
   * its own topic (with channel `ch`, deleted afterwards, so memory does not pile up).
   */
  async httpPublish(topic, channel, result) {
    const o = this.opts;
    await this.deleteTopic(topic); // only the per-phase topics below are used
    for (const mode of ['pub', 'mpub']) {
      for (const clients of o.httpClients) {
        const label = `${mode} ×${clients}`;
        const t = `${topic}_${mode}_${clients}`;
        await this.createTopicChannel(t, channel);
        const procs = Math.min(clients, o.httpProcs);
        const gens = Array.from({ length: procs }, (_, i) => {
          const n = Math.floor(clients / procs) + (i < clients % procs ? 1 : 0);
          return this.worker(HTTP_WORKER, 'http-pub', i, `http-${mode}#${i}`, {
            topic: t,
            mode,
            clients: n,
            httpClient: o.httpClient,
          });
        });
        await this.startAll(gens);
        const timeline = await this.tick(label, [gens], o.duration * 1000, undefined, 'msg/s');
        for (const g of gens) g.stop();
        const rs = await this.results(gens);
        const p = phase(label, rs, 'pub', timeline, 0, gens);
        const reqs = rs.reduce((a, r) => a + r.batches, 0);
        const cpuSum = p.generators.reduce((a, g) => a + g.cpuPct, 0);
        p.requests = reqs;
        p.requestsPerSec = p.seconds > 0 ? round(reqs / p.seconds, 0) : 0;
        p.clients = clients;
        p.processes = procs;
        p.httpClient = o.httpClient;
        p.note =
          `${fmtInt(p.requestsPerSec)} req/s, ${clients} client${clients > 1 ? 's' : ''} in ${procs} proc${procs > 1 ? 's' : ''} ` +
          `(${o.httpClient}), gen CPU sum ${fmt1(cpuSum)}%`;
        result.phases.push(p);
        await this.deleteTopic(t);
      }
    }
  }

  // ---- stats-scrape -----------------------------------------------------------------------------

  /**
   * --scrape-topics × --scrape-channels over HTTP, --scrape-messages per topic (one binary
   * /mpub), then --scrape-count sequential GET /stats?format=json and GET /metrics, each timed
   * (after one untimed warm-up request per endpoint).
   */
  async statsScrape(topic, result) {
    const o = this.opts;
    await this.deleteTopic(topic); // the scenario's own topics are `${topic}_<i>`
    const prefix = `${topic}_`;
    const create = [
      this.worker(HTTP_WORKER, 'create', 0, 'create#0', {
        topicPrefix: prefix,
        topicCount: o.scrapeTopics,
        channelCount: o.scrapeChannels,
        msgsPerTopic: o.scrapeMessages,
        concurrency: 8,
      }),
    ];
    await this.startAll(create);
    const setupTimeline = await this.tick(
      'create',
      [create],
      (o.duration * 6 + 60) * 1000,
      () => create[0].settled,
      'req/s',
    );
    const crs = await this.results(create);
    const cp = phase('create', crs, 'pub', setupTimeline, 0, create);
    cp.note =
      `requests: ${fmtInt(o.scrapeTopics)} topics × ${o.scrapeChannels} channels + ${o.scrapeMessages} msgs/topic ` +
      `(${fmtInt(cp.msgsPerSec)} req/s, 8 at a time)`;
    cp.bytes = 0;
    cp.mibPerSec = 0;
    result.phases.push(cp);

    // What the broker reports now (sanity: the scrape covers what was created).
    try {
      const res = await httpRequest(this.broker.http, 'GET', '/stats?format=json', 30_000);
      const st = JSON.parse(res.body);
      const topics = st.topics ?? [];
      result.brokerHas = {
        topics: topics.length,
        channels: topics.reduce((a, t) => a + (t.channels?.length ?? 0), 0),
        messages: topics.reduce((a, t) => a + (t.message_count ?? 0), 0),
      };
      log(
        `  broker has ${fmtInt(result.brokerHas.topics)} topics, ${fmtInt(result.brokerHas.channels)} channels, ` +
          `${fmtInt(result.brokerHas.messages)} messages`,
      );
    } catch (err) {
      result.notes.push(`could not read /stats after setup: ${err.message}`);
    }

    for (const p of ['/stats?format=json', '/metrics']) {
      const gens = [this.worker(HTTP_WORKER, 'scrape', 0, 'scrape#0', { paths: [p], count: o.scrapeCount })];
      await this.startAll(gens);
      const timeline = await this.tick(
        `GET ${p}`,
        [gens],
        (o.duration * 6 + 60) * 1000,
        () => gens[0].settled,
        'req/s',
      );
      const rs = await this.results(gens);
      const ph = phase(`GET ${p}`, rs, 'pub', timeline, 0, gens);
      const s = rs[0].scrapes[0];
      ph.latency = s;
      ph.responseBytes = s.bytes;
      ph.note =
        `p50 ${s.p50Ms.toFixed(1)} ms, p99 ${s.p99Ms.toFixed(1)} ms, max ${s.maxMs.toFixed(1)} ms ` +
        `(warm-up ${s.warmupMs.toFixed(0)} ms); ` +
        `${fmtInt(s.bytes / 1024)} KiB/response`;
      result.phases.push(ph);
      if (s.p99Ms >= 50) result.notes.push(`GET ${p}: p99 ${s.p99Ms.toFixed(1)} ms ≥ 50 ms target`);
    }
    if (this.broker.external) {
      for (let i = 0; i < o.scrapeTopics; i++) await this.deleteTopic(`${prefix}${i}`);
    }
  }

  // ---- clients ----------------------------------------------------------------------------------

  /**
   * @nsq-ts/client vs nsqjs on the same broker, one client process per phase, each phase on its
   * own topic (deleted afterwards): single publishes (--client-window outstanding), batches of
   * --batch-size (--pipeline outstanding), and a consumer (maxInFlight --rdy, no-op handler that
   * finishes) draining --client-messages pre-published with raw MPUB.
   */
  async clients(topic, channel, result) {
    const o = this.opts;
    await this.deleteTopic(topic);
    const clientGen = (client, role, t, extra = {}) =>
      this.worker(CLIENT_WORKER, role, 0, `${client}-${role}`, {
        client,
        topic: t,
        channel,
        window: o.clientWindow,
        ...extra,
      });
    for (const role of ['pub', 'mpub']) {
      for (const client of o.clients) {
        const label = `${client} ${role === 'pub' ? 'publish' : `publishMany ${o.batchSize}`}`;
        const t = `${topic}_${client}_${role}`;
        await this.createTopicChannel(t, channel);
        const gens = [clientGen(client, role, t)];
        await this.startAll(gens);
        const timeline = await this.tick(label, [gens], o.duration * 1000);
        for (const g of gens) g.stop();
        const rs = await this.results(gens);
        const p = phase(label, rs, 'pub', timeline, 0, gens);
        p.client = client;
        p.note =
          role === 'pub'
            ? `${fmtInt(o.clientWindow)} publishes outstanding`
            : `${o.pipeline} batches of ${o.batchSize} outstanding`;
        result.phases.push(p);
        await this.deleteTopic(t);
      }
    }
    for (const client of o.clients) {
      const label = `${client} consume`;
      const t = `${topic}_${client}_sub`;
      await this.createTopicChannel(t, channel);
      const pre = await this.publishPhase(t, `prepublish for ${client}`, {
        maxMessagesTotal: o.clientMessages,
        ms: (o.duration * 6 + 60) * 1000,
      });
      const prePhase = phase(`prepublish for ${client}`, pre.rs, 'pub', pre.timeline, 0);
      prePhase.note = `raw MPUB, ${o.connections} connections`;
      if (prePhase.msgs < o.clientMessages) throw new Error(`pre-published ${prePhase.msgs} of ${o.clientMessages}`);
      result.phases.push(prePhase);
      const gens = [clientGen(client, 'sub', t, { maxMessages: o.clientMessages })];
      await this.startAll(gens);
      const limitMs = (o.duration * 6 + 30) * 1000;
      const timeline = await this.tick(label, [gens], limitMs, () => gens[0].settled);
      const complete = sum(gens, 'msgs') >= o.clientMessages;
      for (const g of gens) g.stop();
      const rs = await this.results(gens);
      const p = phase(label, rs, 'sub', timeline, 0, gens);
      p.client = client;
      p.expected = o.clientMessages;
      p.complete = complete;
      p.note = `maxInFlight ${o.rdy}, no-op handler + FIN; from consumer creation to last message`;
      if (!complete) {
        result.ok = false;
        result.notes.push(`${client}: consumed ${p.msgs} of ${o.clientMessages} within ${limitMs / 1000} s`);
      }
      result.phases.push(p);
      await this.deleteTopic(t);
    }
  }

  // ---- transport --------------------------------------------------------------------------------

  /**
   * @nsq-ts/client in each --transport-modes mode on one broker (started with a throwaway
   * certificate): publishMany ingest for --transport-duration s, then a consumer draining
   * --transport-messages pre-published with raw MPUB (capped at --transport-duration s). Each
   * phase checks in the broker's /stats that its connection really is in that mode.
   */
  async transport(topic, channel, result) {
    const o = this.opts;
    await this.deleteTopic(topic); // the per-mode topics below are used
    const bodies = makeBodies(o.batchSize, o.msgSize, o.transportBody);
    const batch = Buffer.concat(bodies);
    const ratio = batch.length / zlib.deflateRawSync(batch, { level: o.deflateLevel }).length;
    result.body = { kind: o.transportBody, deflateRatioPerBatch: round(ratio, 2) };
    result.prepublish = [];
    log(
      `  bodies: ${o.transportBody === 'json' ? 'JSON-like records' : "all 'x'"}; ` +
        `one batch (${o.batchSize} × ${o.msgSize} B) deflates ${ratio.toFixed(1)}× at level ${o.deflateLevel}`,
    );
    const ms = o.transportDuration * 1000;
    for (const mode of o.transportModes) {
      const want = TRANSPORT_MODES[mode];
      if (want.tls && this.tlsCaFile === null) {
        result.notes.push(`${mode}: skipped (external broker and no --tls-ca)`);
        log(`  ${mode}: skipped (external broker and no --tls-ca)`);
        continue;
      }
      const transport = { ...want, ...(want.deflate ? { deflateLevel: o.deflateLevel } : {}) };
      const extra = { client: 'ours', channel, transport, tlsCaFile: this.tlsCaFile, bodyKind: o.transportBody };
      const slug = mode.replace('+', '_');
      // Compares what the broker reports with what the mode asked for; a mismatch fails the
      // scenario. Polls from the phase's start until the broker lists the client (a consumer
      // connects only once started, and may be done within a second).
      const check = async (t, role, label, gen) => {
        try {
          let seen = [];
          for (let i = 0; i < 100 && seen.length === 0 && !gen.settled; i++) {
            await sleep(i === 0 ? 20 : 50);
            seen = await brokerTransport(this.broker, t, role);
          }
          if (seen.length === 0) return { text: 'broker listed no client', seen };
          const bad = seen.filter(
            (c) =>
              c.tls !== Boolean(want.tls) || c.snappy !== Boolean(want.snappy) || c.deflate !== Boolean(want.deflate),
          );
          if (bad.length > 0) {
            result.ok = false;
            result.notes.push(`${label}: broker reports ${describeTransport(bad[0])}, wanted ${mode}`);
          }
          return { text: describeTransport(seen[0]), seen };
        } catch (err) {
          return { text: `no /stats: ${err.message}`, seen: [] };
        }
      };

      // Ingest: publishMany batches, --pipeline outstanding, for --transport-duration seconds.
      {
        const label = `${mode} publishMany`;
        const t = `${topic}_${slug}_pub`;
        await this.createTopicChannel(t, channel);
        const gens = [this.worker(CLIENT_WORKER, 'mpub', 0, `ours-mpub-${slug}`, { topic: t, ...extra })];
        await this.startAll(gens);
        const seen = check(t, 'pub', label, gens[0]);
        const timeline = await this.tick(label, [gens], ms);
        for (const g of gens) g.stop();
        const rs = await this.results(gens);
        const p = phase(label, rs, 'pub', timeline, 0, gens);
        const negotiated = await seen;
        Object.assign(p, { client: 'ours', mode, transport, negotiated: negotiated.seen });
        p.note = `${o.pipeline} × ${o.batchSize} outstanding; broker: ${negotiated.text}`;
        result.phases.push(p);
        await this.deleteTopic(t);
      }

      // Consume: --transport-messages pre-published with raw MPUB (plain), then a consumer in this
      // mode until it has them all or --transport-duration seconds have passed.
      {
        const label = `${mode} consume`;
        const t = `${topic}_${slug}_sub`;
        await this.createTopicChannel(t, channel);
        const pre = await this.publishPhase(t, `prepublish for ${mode}`, {
          maxMessagesTotal: o.transportMessages,
          ms: (o.transportDuration * 6 + 60) * 1000,
          extra: { bodyKind: o.transportBody },
        });
        const prePhase = phase(`prepublish for ${mode}`, pre.rs, 'pub', pre.timeline, 0);
        if (prePhase.msgs < o.transportMessages) {
          throw new Error(`pre-published ${prePhase.msgs} of ${o.transportMessages}`);
        }
        result.prepublish.push(prePhase);
        const gens = [
          this.worker(CLIENT_WORKER, 'sub', 0, `ours-sub-${slug}`, {
            topic: t,
            maxMessages: o.transportMessages,
            ...extra,
          }),
        ];
        await this.startAll(gens);
        const seen = check(t, 'sub', label, gens[0]);
        const timeline = await this.tick(label, [gens], ms, () => gens[0].settled);
        const complete = sum(gens, 'msgs') >= o.transportMessages;
        for (const g of gens) g.stop();
        const rs = await this.results(gens);
        const p = phase(label, rs, 'sub', timeline, 0, gens);
        const negotiated = await seen;
        Object.assign(p, {
          client: 'ours',
          mode,
          transport,
          negotiated: negotiated.seen,
          expected: o.transportMessages,
        });
        p.note =
          `maxInFlight ${o.rdy}, ${complete ? `all ${fmtInt(o.transportMessages)}` : `${o.transportDuration} s cap`}; ` +
          `broker: ${negotiated.text}`;
        result.phases.push(p);
        await this.deleteTopic(t);
      }
    }
  }
}

// ---- transport helpers ---------------------------------------------------------------------------

/**
 * What the broker's /stats says about the clients on `topic` (producers, or the channel's
 * consumers): their tls / snappy / deflate flags, so a phase proves it ran in the mode it claims.
 */
async function brokerTransport(broker, topic, role) {
  const q = `/stats?format=json&topic=${encodeURIComponent(topic)}&include_clients=true`;
  const res = await httpRequest(broker.http, 'GET', q, 10_000);
  if (res.status !== 200) throw new Error(`GET ${q} → ${res.status}`);
  const st = JSON.parse(res.body);
  const clients =
    role === 'pub'
      ? (st.producers ?? [])
      : (st.topics ?? []).flatMap((t) => (t.channels ?? []).flatMap((c) => c.clients ?? []));
  return clients.map((c) => ({
    tls: Boolean(c.tls),
    tlsVersion: c.tls_version || null,
    tlsCipherSuite: c.tls_cipher_suite || null,
    snappy: Boolean(c.snappy),
    deflate: Boolean(c.deflate),
  }));
}

function describeTransport(t) {
  const parts = [];
  if (t.tls) parts.push(`TLS (${[t.tlsVersion, t.tlsCipherSuite].filter(Boolean).join(' ') || '?'})`);
  if (t.snappy) parts.push('snappy');
  if (t.deflate) parts.push('deflate');
  return parts.length === 0 ? 'plain' : parts.join(' + ');
}

/**
 * One phase's numbers from its generators' results. Publishers: acknowledged messages over
 * start → last OK. Consumers: first deliveries over start → last message (consume) or
 * start → stop (both, where consumers run for the whole window).
 */
function phase(name, rs, role, timeline, column, gens = null) {
  const msgs = rs.reduce((a, r) => a + r.msgs, 0);
  const bytes = rs.reduce((a, r) => a + r.bytes, 0);
  const start = Math.min(...rs.map((r) => r.startAt));
  const end =
    name === 'out'
      ? Math.max(...rs.map((r) => r.stopAt))
      : Math.max(...rs.map((r) => r.lastAt || r.stopAt || r.startAt));
  const seconds = Math.max(0, (end - start) / 1000);
  return {
    phase: name,
    role,
    msgs,
    bytes,
    seconds: round(seconds, 3),
    /** The window the rate is over, process.hrtime ms (CLOCK_MONOTONIC, as a CPU profile's clock). */
    startAtMs: round(start, 1),
    endAtMs: round(end, 1),
    msgsPerSec: seconds > 0 ? round(msgs / seconds, 0) : 0,
    mibPerSec: seconds > 0 ? round(bytes / MiB / seconds, 2) : 0,
    redeliveries: rs.reduce((a, r) => a + (r.redeliveries ?? 0), 0),
    generators: rs.map((r, i) => ({
      name: gens?.[i]?.name ?? `${role}#${i}`,
      msgs: r.msgs,
      batches: role === 'pub' ? r.batches : undefined,
      redeliveries: role === 'sub' ? r.redeliveries : undefined,
      closeWait: role === 'sub' ? r.closeWait : undefined,
      heartbeats: r.heartbeats,
      softErrors: r.softErrors,
      cpuPct: round(r.cpu?.pct ?? 0, 1),
      cpuUserMs: round(r.cpu?.userMs ?? 0, 0),
      cpuSystemMs: round(r.cpu?.systemMs ?? 0, 0),
    })),
    /** The spawned broker over the timed window (not the setup around it). */
    broker: timeline.broker,
    /** Every process on the machine over the window, % of one core. */
    machineCpuPct: timeline.machineCpuPct,
    /** Machine minus broker minus generators: other load that competed for the CPU. */
    otherCpuPct: timeline.otherCpuPct,
    timeline: timeline.samples.map((s) => ({
      t: s.t,
      msgsPerSec: Math.round(s.rates[column]),
      total: s.totals[column],
      brokerCpuPct: s.brokerCpuPct,
      brokerRssKiB: s.brokerRssKiB,
    })),
  };
}

/** What lib/perf.js uses from this file. */
const HELPERS = {
  phase: (...args) => phase(...args),
  round: (n, d) => round(n, d),
  fmtInt: (n) => fmtInt(n),
  fmt1: (n) => fmt1(n),
  log: (t) => log(t),
  listProfiles: (dir) => listProfiles(dir),
  summarizeProfiles: (dir, before, phases) => summarizeProfiles(dir, before, phases),
};

/** The .cpuprofile files in `dir` (none without --broker-cpu-prof). */
function listProfiles(dir) {
  if (dir === null) return new Set();
  try {
    return new Set(fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')));
  } catch {
    return new Set();
  }
}

/**
 * Summaries of the profiles written to `dir` since `before` (a broker writes one as it exits):
 * the whole profile, and each of `phases` it covers on its own (their rate windows).
 */
function summarizeProfiles(dir, before, phases = []) {
  if (dir === null) return undefined;
  const out = [];
  const windows = phases
    .filter((p) => p.startAtMs > 0 && p.endAtMs > p.startAtMs)
    .map((p) => ({ phase: p.phase, fromMs: p.startAtMs, toMs: p.endAtMs }));
  for (const f of [...listProfiles(dir)].filter((x) => !before.has(x)).sort()) {
    const file = path.join(dir, f);
    try {
      const summary = summarizeFile(file, 25, windows);
      const shown = path.relative(process.cwd(), file);
      log(`  broker CPU profile ${shown.startsWith('..') ? file : shown}:`);
      for (const line of formatSummary(summary, 12)) log(`    ${line}`);
      for (const w of summary.windows ?? []) {
        log(`    phase ${w.phase} (${(w.wallMs / 1000).toFixed(2)} s):`);
        for (const line of formatSummary(w, 6)) log(`      ${line}`);
      }
      out.push({ file, ...summary });
    } catch (err) {
      log(`  broker CPU profile ${file}: not read: ${err.message}`);
    }
  }
  return out;
}

function bothLine(rates, totals) {
  return `in ${fmtInt(rates[0]).padStart(10)} msg/s  out ${fmtInt(rates[1]).padStart(10)} msg/s  backlog ${fmtInt(totals[0] - totals[1])}`;
}

function round(n, digits) {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function table(results) {
  const rows = [
    [
      'scenario',
      'phase',
      'msgs',
      'secs',
      'msgs/s',
      'MiB/s',
      'gen CPU max',
      'broker CPU',
      'broker RSS',
      'other CPU',
      'notes',
    ],
  ];
  for (const r of results) {
    if (r.phases.length === 0) rows.push([r.name, 'FAILED', '', '', '', '', '', '', '', '', '']);
    r.phases.forEach((p, i) => {
      const genCpu = p.generators.length > 0 ? Math.max(...p.generators.map((g) => g.cpuPct)) : null;
      rows.push([
        i === 0 ? r.name : '',
        p.complete === false ? `${p.phase} (INCOMPLETE)` : p.phase,
        fmtInt(p.msgs),
        p.seconds.toFixed(2),
        fmtInt(p.msgsPerSec),
        p.mibPerSec.toFixed(1),
        genCpu === null ? '' : `${fmt1(genCpu)}%`,
        p.broker ? `${fmt1(p.broker.cpuPct)}%` : '',
        p.broker?.rssKiB ? `${fmtInt(p.broker.rssKiB / 1024)} MiB` : '',
        p.otherCpuPct === null ? '' : `${fmt1(p.otherCpuPct)}%`,
        p.note ?? '',
      ]);
    });
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const right = new Set([2, 3, 4, 5, 6, 7, 8, 9]);
  const lines = rows.map((row) =>
    row
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}

async function main() {
  // Output piped into a reader that goes away (`| head`) must not end the run half-way.
  process.stdout.on('error', () => {});
  const opts = parseArgs(process.argv.slice(2));
  const scenarios = opts.scenarios;
  // The whole run bounds itself: publish/both take ~duration, consume up to ~13 × duration.
  const budgetMs =
    scenarios.reduce(
      (a, s) =>
        a +
        (s === 'transport'
          ? opts.transportModes.length * (opts.transportDuration * 9 + 90) + 60
          : s === 'clients' || s === 'stats-scrape'
            ? opts.duration * 30 + 240
            : s === 'fanout'
              ? opts.fanoutChannels.length * (opts.duration + 40) + 60
              : s === 'pub-single'
                ? opts.pubConnections.length * (opts.duration + 30) + 60
                : s === 'latency'
                  ? opts.latencyRates.length * (opts.duration + 40) + 60
                  : s === 'rss-1m'
                    ? opts.duration * 6 + opts.settle + 120
                    : s === 'idle-conns' || s === 'idle-topics'
                      ? opts.idleSeconds + 480
                      : s === 'overflow'
                        ? 2 * (Math.ceil((opts.messages || 10_000_000) / 20_000) + 120) + 180
                        : s === 'durable'
                          ? opts.durableConnections.length * (opts.duration + 40) + 60
                          : s === 'soak'
                            ? opts.minutes * 60 + soakDrainLimitMs(opts) / 1000 + 300
                            : s === 'startup'
                              ? opts.startupRuns * 5 * 16 + 120
                              : s === 'scale'
                                ? opts.scaleVariants.length * (opts.duration * 10 + 150) + 60
                                : opts.duration * 16 + 120),
      0,
    ) *
      1000 +
    60_000;
  const startedAt = new Date();

  const m = machine();
  const transportNote = scenarios.includes('transport') ? ` (transport: ${opts.transportDuration} s)` : '';
  log(
    `nsq-ts bench: ${scenarios.join(', ')}; ${opts.duration} s per phase${transportNote}; ${m.cpus} × ${m.cpuModel}; node ${m.node}`,
  );
  log(
    `load: ${opts.connections} publisher connections (MPUB ${opts.batchSize} × ${opts.msgSize} B, ${opts.pipeline} outstanding), ` +
      `${opts.connections} consumer connections (RDY ${opts.rdy}), one process each`,
  );

  // A spawned broker is fresh for every scenario (nothing left over from the previous one, as
  // NSQ's bench starts a new nsqd per run); an external one is shared and cleaned up by topic.
  const external = Boolean(opts.nsqdTcpAddress || opts.nsqdHttpAddress);
  // The transport scenario's spawned broker gets a throwaway self-signed certificate for 127.0.0.1
  // (its own CA); the TLS clients verify it against that file.
  const tls = !external && scenarios.includes('transport') ? makeCertificate() : null;
  if (tls !== null) {
    opts.tlsCa = tls.cert;
    process.on('exit', () => fs.rmSync(tls.dir, { recursive: true, force: true }));
  }
  const launch = async (scenario) => {
    const flags = scenario === 'transport' && tls !== null ? [`--tls-cert=${tls.cert}`, `--tls-key=${tls.key}`] : [];
    // The storage scenarios bring their own --mem-queue-size and flags (--sync-every, --msg-timeout).
    const storage = storageBroker(scenario, opts);
    if (storage !== null) flags.push(...storage.flags);
    // 10,000 connections need more descriptors than a default soft limit of 1024: the broker is
    // started through `sh -c 'ulimit -n …; exec node …'` (Node cannot raise its own limit).
    const b = await startBroker(opts, flags, {
      ...(scenario === 'idle-conns' ? { nofile: 65_536 } : {}),
      ...(storage !== null ? { memQueueSize: storage.memQueueSize } : {}),
    });
    log(
      b.external
        ? `broker: external, tcp ${b.tcp.host}:${b.tcp.port}, http ${b.http.host}:${b.http.port}`
        : `broker: pid ${b.pid}: ${b.command}`,
    );
    return b;
  };
  let broker = external ? await launch() : null;
  const bench = new Bench(opts, broker);

  let aborting = false;
  const abort = async (why, code) => {
    if (aborting) return;
    aborting = true;
    log(`\naborting: ${why}`);
    bench.killAll();
    await bench.broker?.stop();
    process.exit(code);
  };
  const watchdog = setTimeout(() => abort(`run exceeded its ${Math.round(budgetMs / 1000)} s budget`, 2), budgetMs);
  watchdog.unref();
  process.on('SIGINT', () => abort('interrupted', 130));
  process.on('SIGTERM', () => abort('terminated', 143));
  process.on('uncaughtException', (err) => abort(`uncaught error: ${err.stack ?? err.message}`, 1));

  let info = null;
  let version = null;
  let command = null;
  const results = [];
  try {
    for (const s of scenarios) {
      log(`\n== ${s}`);
      // scale spawns its own nsqds (and a nsqlookupd) per variant: no broker of the run's.
      if (!external && !OWN_DAEMONS.includes(s)) {
        try {
          broker = await launch(s);
        } catch (err) {
          log(`  FAILED: ${err.message}`);
          results.push({ name: s, ok: false, error: err.message, phases: [], notes: [] });
          continue;
        }
        bench.broker = broker;
      }
      if (bench.broker !== null) {
        if (info === null) {
          try {
            const res = await httpRequest(broker.http, 'GET', '/info');
            if (res.status === 200) info = JSON.parse(res.body);
          } catch {
            // /info is optional for this bench.
          }
        }
        version ??= info?.version ?? broker.version ?? null;
        command ??= broker.command;
      }
      const r = await bench.runScenario(s);
      if (bench.broker !== null) {
        r.broker = {
          ...r.broker,
          tcpAddress: `${broker.tcp.host}:${broker.tcp.port}`,
          httpAddress: `${broker.http.host}:${broker.http.port}`,
          final: bench.brokerSample(),
        };
      }
      results.push(r);
      if (!external && bench.broker !== null) {
        const profilesBefore = listProfiles(opts.brokerCpuProf);
        await broker.stop();
        bench.broker = null;
        r.cpuProfiles = summarizeProfiles(opts.brokerCpuProf, profilesBefore, r.phases);
      }
    }
  } finally {
    await bench.broker?.stop();
    clearTimeout(watchdog);
  }

  log(`\n${table(results)}`);
  const gensMax = Math.max(...results.flatMap((r) => r.phases.flatMap((p) => p.generators.map((g) => g.cpuPct))), 0);
  log(
    `\ngen CPU = busiest load-generator process, % of one core (near 100% means the generator may be the limit);` +
      `\nbroker CPU / RSS = spawned broker over the timed phase / at its end (${m.cpus} cores on this machine);` +
      `\nother CPU = every other process on the machine over the phase (the numbers are only clean near 0%).`,
  );
  const busiest = Math.max(...results.flatMap((r) => r.phases.map((p) => p.otherCpuPct ?? 0)), 0);
  if (busiest >= 25)
    log(`warning: other processes used up to ${busiest}% CPU during a phase: the machine was not idle`);
  if (gensMax >= 90) log(`warning: a generator process reached ${gensMax}% CPU: its numbers may be generator-bound`);
  for (const r of results) {
    if (r.backlog !== undefined) log(`${r.name}: backlog at the end ${fmtInt(r.backlog)} messages`);
    for (const note of r.notes) log(`${r.name}: ${note}`);
    if (!r.ok && r.error) log(`${r.name}: FAILED: ${r.error}`);
  }

  const out = {
    startedAt: startedAt.toISOString(),
    commit: gitCommit(),
    machine: m,
    options: { ...opts, nsqdBin: external ? null : path.relative(ROOT, opts.nsqdBin) },
    broker: {
      external,
      freshPerScenario: !external,
      command,
      version,
      identifyResponse: bench.identify ?? null,
    },
    scenarios: results,
  };
  fs.mkdirSync(opts.out, { recursive: true });
  const file = path.join(opts.out, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`\nresults: ${path.relative(process.cwd(), file)}`);
  try {
    const svg = writeChart(out, file.replace(/\.json$/, '.svg'));
    if (svg !== null) log(`chart:   ${path.relative(process.cwd(), svg)}`);
  } catch (err) {
    log(`chart: not written: ${err.message}`);
  }
  // Scenarios with a verdict (soak) end the output with it.
  for (const r of results) if (r.verdict) log(`${r.name}: ${r.verdict}`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
