import { hostname } from 'node:os';
import { createLogger, formatHostPort, type Logger, parseHostPort } from '@nsq-ts/go-compat';
import {
  type ChannelConfigUpdate,
  type ReplayFrom,
  redriveTopic,
  replayChannel,
  setChannelConfig,
  setTopicConfig,
  type TopicConfigUpdate,
} from '@nsq-ts/http-client';
import { goJson, HttpError } from '@nsq-ts/server-kit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocketServer } from 'ws';
import {
  type ActionResult,
  type AdminNotification,
  type ChannelAction,
  PER_NODE_ACTIONS,
  type TopicAction,
} from './actions.js';
import { AdminMetrics } from './admin-metrics.js';
import { type ClusterError, ClusterReader, type ClusterSnapshot } from './cluster.js';
import { CounterDeltas, egressSeries, ingressSeries, nodeSeries, TOTAL_SERIES, topicSeries } from './counter-deltas.js';
import { listen } from './http-routes.js';
import { type AdminOptions, defaultAdminOptions, normalizeBasePath } from './options.js';
import { RateHistory, type RateSeries } from './rate-history.js';
import { Sessions } from './sessions.js';
import { query, Upstream } from './upstream.js';

/** nsqadmin (DESIGN §5, docs/architecture.md): reads and changes the cluster only through lookupd/nsqd HTTP APIs. */

/** A URL fit for a log line: no user:password and no query (either may hold a secret). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search === '' ? '' : '?…'}`;
  } catch {
    return '(invalid URL)';
  }
}

function failed(errors: ClusterError[], source: ClusterError['source'], address: string, err: unknown): void {
  errors.push({ source, address, message: err instanceof Error ? err.message : String(err) });
}

/** How far back the per-sample (fine) history reaches; older history is in coarse steps. */
const FINE_HISTORY_MS = 5 * 60_000;

export class Admin {
  readonly options: AdminOptions;
  readonly logger: Logger;
  readonly basePath: string;
  readonly metrics: AdminMetrics;
  readonly sessions = new Sessions();
  private readonly upstream: Upstream;
  private readonly reader: ClusterReader;
  private readonly history: RateHistory;
  private readonly deltas = new CounterDeltas();
  private http: FastifyInstance | null = null;
  private wss: WebSocketServer | null = null;
  private bound = '';
  private starting: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private sampleTimer: NodeJS.Timeout | null = null;
  private sampling: Promise<void> | null = null;
  private latest: ClusterSnapshot | null = null;
  private readonly notifications = new Set<Promise<void>>();

  constructor(options: Partial<AdminOptions> = {}) {
    this.options = { ...defaultAdminOptions(), ...options };
    this.basePath = normalizeBasePath(this.options.basePath);
    this.logger = createLogger(this.options.logPrefix, this.options.logLevel, (line) => process.stderr.write(line));
    this.upstream = new Upstream(this.options.httpClientRequestTimeoutMs, this.options.httpAuthToken);
    this.reader = new ClusterReader(this.options, this.upstream);
    this.history = new RateHistory({
      sampleIntervalMs: this.options.sampleIntervalMs,
      fineSpanMs: Math.min(FINE_HISTORY_MS, this.options.rateHistoryMs),
      coarseSpanMs: this.options.rateHistoryMs,
    });
    this.metrics = new AdminMetrics(() => this.wss?.clients.size ?? 0);
  }

  /** nsqadmin has no TCP listener: '' keeps it out of the start-up line. */
  get tcpAddress(): string {
    return '';
  }

  get httpAddress(): string {
    return this.bound;
  }

  /** e.g. `http://127.0.0.1:4171/` (after start()). */
  get url(): string {
    const { host, port } = parseHostPort(this.bound);
    const h = host === '::' || host === '0.0.0.0' ? '127.0.0.1' : host;
    return `http://${formatHostPort(h, port)}${this.basePath}/`;
  }

  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  /** Waits for pending notifications too. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** The cluster now, with the latest sampled rates (`ratesAt` says when they were sampled). */
  async snapshot(): Promise<ClusterSnapshot> {
    const snap = await this.reader.snapshot();
    this.metrics.upstreamFailed(snap.errors);
    this.applyRates(snap);
    return snap;
  }

  /** Rate history after `since` (ms since the epoch), every series on one time axis. */
  rateHistory(since: number): RateSeries {
    return this.history.read(since);
  }

  async lookup(): ReturnType<ClusterReader['lookup']> {
    const state = await this.reader.lookup();
    this.metrics.upstreamFailed(state.errors);
    return state;
  }

  /** No access check (the HTTP layer does it); `node` must hold the topic, so no request goes anywhere else. */
  async topicAction(action: TopicAction, topic: string, node = ''): Promise<ActionResult> {
    if (node !== '' && action !== 'tombstone' && !PER_NODE_ACTIONS.has(action)) {
      throw new HttpError(400, 'INVALID_ARG_NODE');
    }
    const errors: ClusterError[] = [];
    const lookupds = this.options.lookupdHttpAddresses;
    const q = query({ topic });
    switch (action) {
      case 'create':
        await this.each('lookupd', lookupds, `/topic/create${q}`, errors);
        if (lookupds.length === 0) await this.each('nsqd', this.options.nsqdHttpAddresses, `/topic/create${q}`, errors);
        break;
      case 'tombstone': {
        if (!(await this.reader.nodeAddresses(errors)).includes(node)) throw new HttpError(404, 'NODE_NOT_FOUND');
        await this.each('lookupd', lookupds, `/topic/tombstone${query({ topic, node })}`, errors);
        await this.each('nsqd', [node], `/topic/delete${q}`, errors);
        break;
      }
      case 'delete': {
        const producers = await this.reader.producersOf(topic, errors);
        await this.each('lookupd', lookupds, `/topic/delete${q}`, errors);
        await this.each('nsqd', producers, `/topic/delete${q}`, errors);
        break;
      }
      default: {
        const producers = await this.targets(topic, node, errors);
        await this.each('nsqd', producers, `/topic/${action}${q}`, errors);
      }
    }
    return this.acted({ action: `${action}_topic`, topic, ...(node === '' ? {} : { node }), errors });
  }

  /** Runs a channel action on the cluster; `node` narrows pause, unpause and empty to that node. */
  async channelAction(action: ChannelAction, topic: string, channel: string, node = ''): Promise<ActionResult> {
    if (node !== '' && !PER_NODE_ACTIONS.has(action)) throw new HttpError(400, 'INVALID_ARG_NODE');
    const errors: ClusterError[] = [];
    const lookupds = this.options.lookupdHttpAddresses;
    const q = query({ topic, channel });
    const producers = await this.targets(topic, node, errors);
    if (action === 'create' || action === 'delete')
      await this.each('lookupd', lookupds, `/channel/${action}${q}`, errors);
    await this.each('nsqd', producers, `/channel/${action}${q}`, errors);
    return this.acted({ action: `${action}_channel`, topic, channel, ...(node === '' ? {} : { node }), errors });
  }

  async configureTopic(topic: string, update: TopicConfigUpdate): Promise<ActionResult> {
    const errors: ClusterError[] = [];
    const producers = await this.targets(topic, '', errors);
    await this.each('nsqd', producers, (n) => setTopicConfig(this.upstream, n, topic, update), errors);
    return this.acted({ action: 'config_topic', topic, errors });
  }

  async configureChannel(topic: string, channel: string, update: ChannelConfigUpdate): Promise<ActionResult> {
    const errors: ClusterError[] = [];
    const producers = await this.targets(topic, '', errors);
    await this.each('nsqd', producers, (n) => setChannelConfig(this.upstream, n, topic, channel, update), errors);
    return this.acted({ action: 'config_channel', topic, channel, errors });
  }

  /** Rewinds a channel on every node that has its topic (nsq-ts nsqd, topics with retention). */
  async replay(topic: string, channel: string, from: ReplayFrom): Promise<ActionResult> {
    const errors: ClusterError[] = [];
    const producers = await this.targets(topic, '', errors);
    await this.each('nsqd', producers, (n) => replayChannel(this.upstream, n, topic, channel, from), errors);
    return this.acted({ action: 'replay_channel', topic, channel, errors });
  }

  /** One node after the other so that `max` (0: no limit) bounds the total. */
  async redrive(from: string, to: string, max: number): Promise<ActionResult> {
    const errors: ClusterError[] = [];
    const producers = await this.targets(from, '', errors);
    let moved = 0;
    for (const n of producers) {
      if (max > 0 && moved >= max) break;
      try {
        const result = await redriveTopic(this.upstream, n, from, to, max > 0 ? { max: max - moved } : {});
        moved += result.moved;
      } catch (err) {
        failed(errors, 'nsqd', n, err);
      }
    }
    return this.acted({ action: 'redrive_topic', topic: from, moved, errors });
  }

  /** The producers of `topic`, or just `node` when it is one of them (404 when it is not). */
  private async targets(topic: string, node: string, errors: ClusterError[]): Promise<string[]> {
    const producers = await this.reader.producersOf(topic, errors);
    if (node === '') return producers;
    if (!producers.includes(node)) throw new HttpError(404, 'NODE_NOT_FOUND');
    return [node];
  }

  private acted(result: ActionResult): ActionResult {
    this.metrics.acted(result.action);
    this.metrics.upstreamFailed(result.errors);
    const where = `${result.channel === undefined ? '' : ` channel=${result.channel}`}${result.node === undefined ? '' : ` node=${result.node}`}`;
    this.logger.info(`action ${result.action} topic=${result.topic}${where}`);
    void this.pushFresh();
    return result;
  }

  /** POSTs `call` (a path and query, or a call of its own) to every address at once; failures go to `errors`. */
  private async each(
    source: ClusterError['source'],
    addresses: readonly string[],
    call: string | ((address: string) => Promise<unknown>),
    errors: ClusterError[],
  ): Promise<void> {
    const send = typeof call === 'string' ? (address: string) => this.upstream.post(address, call) : call;
    await Promise.all(
      addresses.map((address) => send(address).catch((err: unknown) => failed(errors, source, address, err))),
    );
  }

  /** Sends the action's JSON event to --notification-http-endpoint, if set (never awaited). */
  notify(req: FastifyRequest, result: ActionResult): void {
    const endpoint = this.options.notificationHttpEndpoint;
    if (endpoint === '') return;
    const user = req.headers[this.options.aclHttpHeader.toLowerCase()];
    const userAgent = req.headers['user-agent'];
    const event: AdminNotification = {
      action: result.action,
      topic: result.topic,
      ...(result.channel === undefined ? {} : { channel: result.channel }),
      ...(result.node === undefined ? {} : { node: result.node }),
      timestamp: Math.floor(Date.now() / 1000),
      ...(typeof user === 'string' ? { user } : {}),
      remote_ip: req.ip,
      ...(typeof userAgent === 'string' ? { user_agent: userAgent } : {}),
      url: req.url,
      via: hostname(),
    };
    const sent = fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(this.options.httpClientRequestTimeoutMs),
    }).then(
      (res) => {
        if (!res.ok) this.logger.error(`notification to ${redactUrl(endpoint)} answered ${res.status}`);
      },
      (err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        this.logger.error(`notification to ${redactUrl(endpoint)} failed - ${why}`);
      },
    );
    this.notifications.add(sent);
    void sent.finally(() => this.notifications.delete(sent));
  }

  private async doStart(): Promise<void> {
    const { app, wss } = listen(this);
    this.http = app;
    this.wss = wss;
    wss.on('connection', (ws) => {
      ws.on('error', () => ws.terminate());
      if (this.latest !== null) ws.send(goJson({ type: 'snapshot', snapshot: this.latest }));
    });
    const at = parseHostPort(this.options.httpAddress);
    await app.listen({ host: at.host, port: at.port });
    const a = app.server.address();
    if (a !== null && typeof a === 'object') this.bound = formatHostPort(a.address, a.port);
    this.logger.info(`HTTP: listening on ${this.bound}`);
    this.scheduleSample(0);
  }

  /** Samples at a fixed cadence: the next read starts one interval after this one started. */
  private scheduleSample(delayMs: number): void {
    if (this.closing !== null) return;
    this.sampleTimer = setTimeout(() => {
      this.sampleTimer = null;
      const started = Date.now();
      this.sampling = this.sample().finally(() => {
        this.sampling = null;
        this.scheduleSample(Math.max(0, this.options.sampleIntervalMs - (Date.now() - started)));
      });
    }, delayMs);
  }

  private async sample(): Promise<void> {
    const started = Date.now();
    let snap: ClusterSnapshot;
    try {
      snap = await this.reader.snapshot();
    } catch (err) {
      this.metrics.sampled(started, Date.now() - started, 'failed');
      this.logger.error(`sample failed - ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.metrics.sampled(snap.at, Date.now() - started, snap.errors.length === 0 ? 'ok' : 'partial');
    this.metrics.upstreamFailed(snap.errors);
    this.history.record(snap.at, this.deltas.next(snap));
    this.applyRates(snap);
    this.latest = snap;
    this.broadcast(snap);
  }

  /** After an action: a fresh read to every browser at once, rather than at the next sample. */
  private async pushFresh(): Promise<void> {
    if (this.wss === null || this.wss.clients.size === 0 || this.closing !== null) return;
    try {
      this.broadcast(await this.snapshot());
    } catch (err) {
      this.logger.error(`read after action failed - ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private broadcast(snap: ClusterSnapshot): void {
    const text = goJson({ type: 'snapshot', snapshot: snap });
    for (const ws of this.wss?.clients ?? []) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  private applyRates(snap: ClusterSnapshot): void {
    const h = this.history;
    snap.ratesAt = h.ratesAt;
    snap.rateWindowMs = h.rateWindowMs;
    snap.sampleIntervalMs = this.options.sampleIntervalMs;
    snap.totalRate = h.rate(TOTAL_SERIES);
    for (const n of snap.nodes) n.ingressRate = h.rate(nodeSeries(n.id));
    for (const t of snap.topics) {
      t.ingressRate = h.rate(topicSeries(t.name));
      for (const c of t.channels) {
        c.ingressRate = h.rate(ingressSeries(t.name, c.name));
        c.egressRate = h.rate(egressSeries(t.name, c.name));
      }
    }
  }

  private async doClose(): Promise<void> {
    await this.starting?.catch(() => undefined);
    if (this.sampleTimer !== null) clearTimeout(this.sampleTimer);
    this.sampleTimer = null;
    await this.sampling;
    const wss = this.wss;
    if (wss !== null) {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
    if (this.http !== null) await this.http.close();
    await Promise.all([...this.notifications]);
    this.metrics.registry.clear();
    this.logger.info('nsqadmin closed');
  }
}

export function createAdmin(options: Partial<AdminOptions> = {}): Admin {
  return new Admin(options);
}
