import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createLogger, formatHostPort, type GoQuery, type Logger, parseHostPort } from '@nsq-ts/protocol';
import { bearerMatches, constantTimeEqual, createV1App, EMPTY, goJson, HttpError, TEXT_TYPE } from '@nsq-ts/server-kit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type WebSocket, WebSocketServer } from 'ws';
import { type ClusterError, ClusterReader, type ClusterSnapshot } from './cluster.js';
import { type AdminOptions, defaultAdminOptions, normalizeBasePath } from './options.js';
import { query, Upstream } from './upstream.js';
import { adminVersionLine } from './version.js';

/**
 * nsqadmin (DESIGN §5): a fastify server with a JSON API under `<base>/api/`, the UI's static
 * files, and a WebSocket (`<base>/api/ws`) on which, while browsers are connected, a snapshot of
 * the cluster is pushed every poll interval. The cluster is read and changed only through
 * nsqlookupd's and nsqd's HTTP APIs, so it manages NSQ's own daemons as well as ours.
 */

export type TopicAction = 'create' | 'pause' | 'unpause' | 'empty' | 'delete' | 'tombstone';
export type ChannelAction = 'create' | 'pause' | 'unpause' | 'empty' | 'delete';

const TOPIC_ACTIONS: readonly TopicAction[] = ['create', 'pause', 'unpause', 'empty', 'delete', 'tombstone'];
const CHANNEL_ACTIONS: readonly ChannelAction[] = ['create', 'pause', 'unpause', 'empty', 'delete'];

/** The JSON body POSTed to `--notification-http-endpoint` for every action (NSQ's AdminAction). */
export interface AdminNotification {
  action: string;
  topic: string;
  channel?: string;
  node?: string;
  /** Seconds since the epoch. */
  timestamp: number;
  user?: string;
  remote_ip: string;
  user_agent?: string;
  url: string;
  via: string;
}

/** What an action answers: the upstream calls that failed (none: it took effect everywhere). */
export interface ActionResult {
  action: string;
  topic: string;
  channel?: string;
  node?: string;
  errors: ClusterError[];
}

const STATIC_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

function loadStatic(): Map<string, Buffer> {
  const dir = fileURLToPath(new URL('../static/', import.meta.url));
  return new Map(Object.keys(STATIC_FILES).map((name) => [name, readFileSync(`${dir}${name}`)]));
}

function required(q: GoQuery, name: 'topic' | 'channel' | 'node'): string {
  const value = q.get(name)?.[0] ?? '';
  if (value === '') throw new HttpError(400, `MISSING_ARG_${name.toUpperCase()}`);
  return value;
}

/** A URL fit for a log line: no user:password and no query (either may hold a secret). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search === '' ? '' : '?…'}`;
  } catch {
    return '(invalid URL)';
  }
}

const SESSION_COOKIE = 'nsqadmin_session';
const SESSION_TTL_MS = 12 * 3600_000;
const MAX_LOGIN_BODY = 4096;

function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The request body as text, or null beyond `limit` bytes. */
function readText(req: FastifyRequest, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.raw.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limit) chunks.push(chunk);
    });
    req.raw.on('end', () => resolve(total > limit ? null : Buffer.concat(chunks).toString('utf8')));
    req.raw.on('error', reject);
  });
}

export class Admin {
  readonly options: AdminOptions;
  readonly logger: Logger;
  readonly basePath: string;
  private readonly upstream: Upstream;
  private readonly reader: ClusterReader;
  private http: FastifyInstance | null = null;
  private wss: WebSocketServer | null = null;
  private bound = '';
  private starting: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private latest: ClusterSnapshot | null = null;
  /** message_count and time of the previous poll, per `t:topic` and `c:topic/channel`. */
  private readonly lastCounts = new Map<string, { count: number; at: number }>();
  private readonly rates = new Map<string, number>();
  private readonly notifications = new Set<Promise<void>>();
  /** Login sessions (--admin-password-file): id → expiry (ms). */
  private readonly sessions = new Map<string, number>();

  constructor(options: Partial<AdminOptions> = {}) {
    this.options = { ...defaultAdminOptions(), ...options };
    this.basePath = normalizeBasePath(this.options.basePath);
    this.logger = createLogger(this.options.logPrefix, this.options.logLevel, (line) => process.stderr.write(line));
    this.upstream = new Upstream(this.options.httpClientRequestTimeoutMs, this.options.httpAuthToken);
    this.reader = new ClusterReader(this.options, this.upstream);
  }

  /** nsqadmin has no TCP listener; runDaemon's start-up line shows this. */
  get tcpAddress(): string {
    return 'disabled';
  }

  /** `host:port` the HTTP server is bound to (after start()). */
  get httpAddress(): string {
    return this.bound;
  }

  /** The UI's URL (after start()), e.g. `http://127.0.0.1:4171/`. */
  get url(): string {
    const { host, port } = parseHostPort(this.bound);
    const h = host === '::' || host === '0.0.0.0' ? '127.0.0.1' : host;
    return `http://${formatHostPort(h, port)}${this.basePath}/`;
  }

  /** Listens; resolves once bound. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  /** Stops polling, closes WebSockets and the server, waits for pending notifications. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** The cluster now, with the rates of the last live poll. */
  async snapshot(): Promise<ClusterSnapshot> {
    const snap = await this.reader.snapshot();
    for (const t of snap.topics) {
      t.rate = this.rates.get(`t:${t.name}`) ?? 0;
      for (const c of t.channels) c.rate = this.rates.get(`c:${t.name}/${c.name}`) ?? 0;
    }
    return snap;
  }

  /** Runs a topic action on the cluster (no access check: the HTTP layer does that). */
  async topicAction(action: TopicAction, topic: string, node = ''): Promise<ActionResult> {
    const errors: ClusterError[] = [];
    const lookupds = this.options.lookupdHttpAddresses;
    const q = query({ topic });
    switch (action) {
      case 'create':
        await this.each('lookupd', lookupds, `/topic/create${q}`, errors);
        if (lookupds.length === 0) await this.each('nsqd', this.options.nsqdHttpAddresses, `/topic/create${q}`, errors);
        break;
      case 'tombstone':
        await this.each('lookupd', lookupds, `/topic/tombstone${query({ topic, node })}`, errors);
        await this.each('nsqd', [node], `/topic/delete${q}`, errors);
        break;
      case 'delete': {
        const producers = await this.reader.producersOf(topic, errors);
        await this.each('lookupd', lookupds, `/topic/delete${q}`, errors);
        await this.each('nsqd', producers, `/topic/delete${q}`, errors);
        break;
      }
      default: {
        const producers = await this.reader.producersOf(topic, errors);
        await this.each('nsqd', producers, `/topic/${action}${q}`, errors);
      }
    }
    return { action: `${action}_topic`, topic, ...(node === '' ? {} : { node }), errors };
  }

  /** Runs a channel action on the cluster (no access check: the HTTP layer does that). */
  async channelAction(action: ChannelAction, topic: string, channel: string): Promise<ActionResult> {
    const errors: ClusterError[] = [];
    const lookupds = this.options.lookupdHttpAddresses;
    const q = query({ topic, channel });
    const producers = await this.reader.producersOf(topic, errors);
    if (action === 'create' || action === 'delete')
      await this.each('lookupd', lookupds, `/channel/${action}${q}`, errors);
    await this.each('nsqd', producers, `/channel/${action}${q}`, errors);
    return { action: `${action}_channel`, topic, channel, errors };
  }

  private async each(
    source: ClusterError['source'],
    addresses: readonly string[],
    pathAndQuery: string,
    errors: ClusterError[],
  ): Promise<void> {
    await Promise.all(
      addresses.map((address) =>
        this.upstream.post(address, pathAndQuery).catch((err: unknown) => {
          errors.push({ source, address, message: err instanceof Error ? err.message : String(err) });
        }),
      ),
    );
  }

  /** True without a password; else with it as a Bearer token or with a live session cookie. */
  private isLoggedIn(req: FastifyRequest): boolean {
    const password = this.options.adminPassword;
    if (password === '') return true;
    if (bearerMatches(req.headers.authorization, [password])) return true;
    const id = cookie(req, SESSION_COOKIE);
    if (id === undefined) return false;
    const expires = this.sessions.get(id);
    if (expires === undefined) return false;
    if (expires > Date.now()) return true;
    this.sessions.delete(id);
    return false;
  }

  private sessionCookie(id: string, maxAgeS: number): string {
    return `${SESSION_COOKIE}=${id}; Path=${this.basePath}/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict`;
  }

  private isAdmin(req: FastifyRequest): boolean {
    if (this.options.adminUsers.length === 0) return true;
    const user = req.headers[this.options.aclHttpHeader.toLowerCase()];
    return typeof user === 'string' && this.options.adminUsers.includes(user);
  }

  private notify(req: FastifyRequest, result: ActionResult): void {
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
    const statics = loadStatic();
    const base = this.basePath;
    const v1 = createV1App(this.logger);
    const { route, plain, app } = v1;

    const index = (_req: FastifyRequest, reply: import('fastify').FastifyReply) =>
      reply.type(STATIC_FILES['index.html']).header('Cache-Control', 'no-cache').send(statics.get('index.html'));
    plain('GET', `${base}/`, index);
    if (base !== '') plain('GET', base, (_req, reply) => reply.redirect(`${base}/`));
    plain('GET', `${base}/static/:file`, (req, reply) => {
      const file = (req.params as { file: string }).file;
      const body = statics.get(file);
      if (body === undefined || file === 'index.html') return reply.code(404).type(TEXT_TYPE).send('not found');
      return reply.type(STATIC_FILES[file]).header('Cache-Control', 'no-cache').send(body);
    });
    plain('GET', `${base}/ping`, (_req, reply) => reply.type(TEXT_TYPE).send('OK'));

    route('GET', `${base}/api/snapshot`, () => this.snapshot());
    route('GET', `${base}/api/topics`, async () => {
      const { topics, errors } = await this.snapshot();
      return { topics, errors };
    });
    route('GET', `${base}/api/topics/:topic`, async (req) => {
      const name = (req.params as { topic: string }).topic;
      const { topics, errors } = await this.snapshot();
      const topic = topics.find((t) => t.name === name);
      if (topic === undefined) throw new HttpError(404, 'TOPIC_NOT_FOUND');
      return { topic, errors };
    });
    route('GET', `${base}/api/topics/:topic/:channel`, async (req) => {
      const params = req.params as { topic: string; channel: string };
      const { topics, errors } = await this.snapshot();
      const channel = topics.find((t) => t.name === params.topic)?.channels.find((c) => c.name === params.channel);
      if (channel === undefined) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
      return { channel, errors };
    });
    route('GET', `${base}/api/nodes`, async () => {
      const { nodes, errors } = await this.snapshot();
      return { nodes, errors };
    });
    route('GET', `${base}/api/lookup`, () => this.reader.lookup());
    route('GET', `${base}/api/me`, (req) => ({
      admin: this.isAdmin(req),
      aclEnabled: this.options.adminUsers.length > 0,
      loginRequired: this.options.adminPassword !== '',
      loggedIn: this.isLoggedIn(req),
    }));

    // Built-in login (--admin-password-file): `{"password": "..."}` → a session cookie.
    plain('POST', `${base}/api/login`, async (req, reply) => {
      const password = this.options.adminPassword;
      if (password === '') return reply.code(404).type(TEXT_TYPE).send('login disabled');
      const text = await readText(req, MAX_LOGIN_BODY);
      let given: unknown;
      try {
        given = (JSON.parse(text ?? '') as { password?: unknown }).password;
      } catch {
        given = undefined;
      }
      if (typeof given !== 'string' || !constantTimeEqual(given, password)) {
        this.logger.warn(`login failed from ${req.ip}`);
        return reply
          .code(401)
          .type('application/json; charset=utf-8')
          .send(goJson({ message: 'UNAUTHORIZED' }));
      }
      // Expired sessions are dropped here, so the map stays as small as the live logins.
      const now = Date.now();
      for (const [id, expires] of this.sessions) if (expires <= now) this.sessions.delete(id);
      const id = randomBytes(32).toString('base64url');
      this.sessions.set(id, now + SESSION_TTL_MS);
      this.logger.info(`login from ${req.ip}`);
      return reply
        .header('Set-Cookie', this.sessionCookie(id, SESSION_TTL_MS / 1000))
        .type('application/json; charset=utf-8')
        .send(goJson({ loggedIn: true }));
    });
    route('POST', `${base}/api/logout`, (req) => {
      const id = cookie(req, SESSION_COOKIE);
      if (id !== undefined) this.sessions.delete(id);
      return EMPTY;
    });

    route('POST', `${base}/api/topic/:action`, async (req, q) => {
      const action = TOPIC_ACTIONS.find((a) => a === (req.params as { action: string }).action);
      if (action === undefined) throw new HttpError(404, 'NOT_FOUND');
      const topic = required(q, 'topic');
      const node = action === 'tombstone' ? required(q, 'node') : '';
      if (!this.isLoggedIn(req)) throw new HttpError(401, 'UNAUTHORIZED');
      if (!this.isAdmin(req)) throw new HttpError(403, 'FORBIDDEN');
      const result = await this.topicAction(action, topic, node);
      this.logger.info(`action ${result.action} topic=${topic}${node === '' ? '' : ` node=${node}`}`);
      this.notify(req, result);
      this.pollSoon();
      return result;
    });
    route('POST', `${base}/api/channel/:action`, async (req, q) => {
      const action = CHANNEL_ACTIONS.find((a) => a === (req.params as { action: string }).action);
      if (action === undefined) throw new HttpError(404, 'NOT_FOUND');
      const topic = required(q, 'topic');
      const channel = required(q, 'channel');
      if (!this.isLoggedIn(req)) throw new HttpError(401, 'UNAUTHORIZED');
      if (!this.isAdmin(req)) throw new HttpError(403, 'FORBIDDEN');
      const result = await this.channelAction(action, topic, channel);
      this.logger.info(`action ${result.action} topic=${topic} channel=${channel}`);
      this.notify(req, result);
      this.pollSoon();
      return result;
    });

    const wss = new WebSocketServer({ server: app.server, path: `${base}/api/ws` });
    wss.on('connection', (ws) => this.onConnection(ws));
    this.wss = wss;
    this.http = app;

    const at = parseHostPort(this.options.httpAddress);
    await app.listen({ host: at.host, port: at.port });
    const a = app.server.address();
    if (a !== null && typeof a === 'object') this.bound = formatHostPort(a.address, a.port);
    this.logger.info(`${adminVersionLine()}: HTTP listening on ${this.bound}`);
  }

  private onConnection(ws: WebSocket): void {
    ws.on('error', () => ws.terminate());
    if (this.latest !== null) ws.send(goJson({ type: 'snapshot', snapshot: this.latest }));
    if (this.pollTimer === null && !this.polling) void this.poll();
  }

  /** After an action, refresh the live view at once rather than at the next tick. */
  private pollSoon(): void {
    if (this.wss === null || this.wss.clients.size === 0 || this.polling) return;
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    void this.poll();
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      const snap = await this.reader.snapshot();
      this.applyRates(snap);
      this.latest = snap;
      const text = goJson({ type: 'snapshot', snapshot: snap });
      for (const ws of this.wss?.clients ?? []) if (ws.readyState === ws.OPEN) ws.send(text);
    } catch (err) {
      this.logger.error(`poll failed - ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.polling = false;
    }
    if (this.closing === null && this.wss !== null && this.wss.clients.size > 0) {
      this.pollTimer = setTimeout(() => {
        this.pollTimer = null;
        void this.poll();
      }, this.options.pollIntervalMs);
    }
  }

  private applyRates(snap: ClusterSnapshot): void {
    const seen = new Set<string>();
    const rate = (key: string, count: number): number => {
      seen.add(key);
      const prev = this.lastCounts.get(key);
      this.lastCounts.set(key, { count, at: snap.at });
      const seconds = prev === undefined ? 0 : (snap.at - prev.at) / 1000;
      const value = prev === undefined || seconds <= 0 ? 0 : Math.max(0, (count - prev.count) / seconds);
      this.rates.set(key, value);
      return value;
    };
    for (const t of snap.topics) {
      t.rate = rate(`t:${t.name}`, t.messageCount);
      for (const c of t.channels) c.rate = rate(`c:${t.name}/${c.name}`, c.messageCount);
    }
    for (const key of [...this.lastCounts.keys()]) {
      if (!seen.has(key)) {
        this.lastCounts.delete(key);
        this.rates.delete(key);
      }
    }
  }

  private async doClose(): Promise<void> {
    await this.starting?.catch(() => undefined);
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    const wss = this.wss;
    if (wss !== null) {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
    if (this.http !== null) await this.http.close();
    await Promise.all([...this.notifications]);
    this.logger.info('nsqadmin closed');
  }
}

/** Creates an nsqadmin; call start() to listen and close() to stop (both idempotent). */
export function createAdmin(options: Partial<AdminOptions> = {}): Admin {
  return new Admin(options);
}
