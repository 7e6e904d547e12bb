import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { GoQuery, Logger } from '@nsq-ts/go-compat';
import type { ChannelConfigUpdate, ReplayFrom, TopicConfigUpdate } from '@nsq-ts/http-client';
import { isValidChannelName, isValidTopicName } from '@nsq-ts/protocol';
import {
  bearerMatches,
  constantTimeEqual,
  createV1App,
  EMPTY,
  goDurationParam,
  goJson,
  HttpError,
  JSON_TYPE,
  TEXT_TYPE,
} from '@nsq-ts/server-kit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WebSocketServer } from 'ws';
import type { ActionResult, ChannelAction, TopicAction } from './actions.js';
import type { AdminMetrics } from './admin-metrics.js';
import type { ClusterSnapshot, LookupState } from './cluster-model.js';
import { csrfRefusal, webSocketOriginAllowed } from './csrf.js';
import type { AdminOptions } from './options.js';
import type { RateSeries } from './rate-history.js';
import { SESSION_TTL_MS, type Sessions } from './sessions.js';

/**
 * nsqadmin's HTTP surface. Reads (GET) are open; every other method first passes the CSRF checks
 * (csrf.ts), then the login (--admin-password-file) and the admin-user ACL. Actions come in two
 * shapes that do the same thing:
 *
 *   NSQ's nsqadmin API, JSON bodies:   POST /api/topics {"topic","channel"}          create
 *                                      POST /api/topics/:topic {"action","node"}      pause|unpause|empty
 *                                      POST /api/topics/:topic/:channel {"action","node"}
 *                                      DELETE /api/topics/:topic[/:channel]           delete
 *                                      DELETE /api/nodes/:node {"topic"}              tombstone
 *   query strings (curl-friendly):     POST /api/topic/:action?topic=&node=
 *                                      POST /api/channel/:action?topic=&channel=&node=
 *
 * `node` (optional, an nsq-ts extension) narrows pause, unpause and empty to one node.
 *
 * nsq-ts's delivery policies (not in NSQ), applied on every node that has the topic, each
 * parameter in the query or in a JSON body:
 *
 *   POST /api/topic/config?topic=&max_depth=&max_bytes=&overflow=&message_ttl=&retention=
 *   POST /api/channel/config?topic=&channel=&max_attempts=&dead_letter_topic=
 *   POST /api/channel/replay?topic=&channel=&since=|offset=
 *   POST /api/topic/redrive?topic=&to=[&max=]                            → {"moved": N, …}
 */

const TOPIC_ACTIONS: readonly TopicAction[] = ['create', 'pause', 'unpause', 'empty', 'delete', 'tombstone'];
const CHANNEL_ACTIONS: readonly ChannelAction[] = ['create', 'pause', 'unpause', 'empty', 'delete'];

const STATIC_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'pages.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

const SESSION_COOKIE = 'nsqadmin_session';
const MAX_JSON_BODY = 64 * 1024;
const DEFAULT_HISTORY_MS = 5 * 60_000;

function loadStatic(): Map<string, Buffer> {
  const dir = fileURLToPath(new URL('../static/', import.meta.url));
  return new Map(Object.keys(STATIC_FILES).map((name) => [name, readFileSync(`${dir}${name}`)]));
}

function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

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

/** String fields of a JSON object body (numbers as text), else 400; `optional`: an empty body is no fields. */
async function readBody(req: FastifyRequest, optional = false): Promise<Record<string, string>> {
  const text = await readText(req, MAX_JSON_BODY);
  if (text === null) throw new HttpError(413, 'BODY_TOO_BIG');
  if (optional && text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'INVALID_BODY');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'INVALID_BODY');
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v === 'string') fields[k] = v;
    else if (typeof v === 'number') fields[k] = String(v);
  }
  return fields;
}

function param(q: GoQuery, name: string): string {
  return q.get(name)?.[0] ?? '';
}

function validTopic(topic: string): string {
  if (topic === '') throw new HttpError(400, 'MISSING_ARG_TOPIC');
  if (!isValidTopicName(topic)) throw new HttpError(400, 'INVALID_TOPIC');
  return topic;
}

function validChannel(channel: string): string {
  if (channel === '') throw new HttpError(400, 'MISSING_ARG_CHANNEL');
  if (!isValidChannelName(channel)) throw new HttpError(400, 'INVALID_CHANNEL');
  return channel;
}

/** The attempts counter on the wire is a uint16. */
const MAX_ATTEMPTS_LIMIT = 65535;

/** An action's parameters: the query's, overridden by a JSON body's (a body is optional). */
async function actionParams(req: FastifyRequest, q: GoQuery): Promise<Map<string, string>> {
  const params = new Map<string, string>();
  for (const [k, v] of q) if (v[0] !== undefined) params.set(k, v[0]);
  const json = (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
  if (json) for (const [k, v] of Object.entries(await readBody(req, true))) params.set(k, v);
  return params;
}

/** A non-negative integer parameter (at most `max`), or 400 `code`; undefined when absent. */
function countParam(params: Map<string, string>, name: string, code: string, max = Number.MAX_SAFE_INTEGER) {
  const text = params.get(name);
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text) || Number(text) > max) throw new HttpError(400, code);
  return Number(text);
}

/** A non-negative Go duration parameter, passed on as it was written; undefined when absent. */
function durationParam(params: Map<string, string>, name: string, code: string): string | undefined {
  const text = params.get(name);
  if (text !== undefined) goDurationParam(text, code);
  return text;
}

function topicUpdate(params: Map<string, string>): TopicConfigUpdate {
  const overflow = params.get('overflow');
  if (overflow !== undefined && overflow !== 'reject' && overflow !== 'drop_oldest') {
    throw new HttpError(400, 'INVALID_OVERFLOW');
  }
  const update: Record<string, string | number | undefined> = {
    maxDepth: countParam(params, 'max_depth', 'INVALID_MAX_DEPTH'),
    maxBytes: countParam(params, 'max_bytes', 'INVALID_MAX_BYTES'),
    overflow,
    messageTtl: durationParam(params, 'message_ttl', 'INVALID_MESSAGE_TTL'),
    retention: durationParam(params, 'retention', 'INVALID_RETENTION'),
  };
  return definedOnly(update) as TopicConfigUpdate;
}

function channelUpdate(params: Map<string, string>): ChannelConfigUpdate {
  const dead = params.get('dead_letter_topic');
  if (dead !== undefined && dead !== '') validTopic(dead);
  const update = {
    maxAttempts: countParam(params, 'max_attempts', 'INVALID_MAX_ATTEMPTS', MAX_ATTEMPTS_LIMIT),
    deadLetterTopic: dead,
  };
  return definedOnly(update) as ChannelConfigUpdate;
}

/** `update` without its undefined entries; 400 MISSING_ARG_CONFIG when nothing is left (as nsqd answers). */
function definedOnly(update: Record<string, string | number | undefined>): Record<string, string | number> {
  const defined = Object.fromEntries(Object.entries(update).filter(([, v]) => v !== undefined)) as Record<
    string,
    string | number
  >;
  if (Object.keys(defined).length === 0) throw new HttpError(400, 'MISSING_ARG_CONFIG');
  return defined;
}

/** `since` (unix ms or RFC 3339) or `offset`: exactly one. */
function replayFrom(params: Map<string, string>): ReplayFrom {
  const since = params.get('since');
  const offset = countParam(params, 'offset', 'INVALID_ARG_OFFSET');
  if ((since === undefined) === (offset === undefined)) throw new HttpError(400, 'MISSING_ARG_SINCE');
  if (offset !== undefined) return { offset };
  const text = since as string;
  if (/^\d+$/.test(text)) return { since: Number(text) };
  if (!/^\d{4}-\d\d-\d\dT/.test(text) || Number.isNaN(Date.parse(text))) throw new HttpError(400, 'INVALID_ARG_SINCE');
  return { since: text };
}

/** NSQ's `message`: '' when every upstream call succeeded, else a WARNING listing the failures. */
function withMessage(result: ActionResult): ActionResult & { message: string } {
  const failures = result.errors.map((e) => `${e.source} ${e.address}: ${e.message}`);
  return { ...result, message: failures.length === 0 ? '' : `WARNING: ${failures.join('; ')}` };
}

/** The parts of a snapshot about one node (GET /api/nodes/:node, NSQ's node view). */
function nodeDetail(snap: ClusterSnapshot, id: string) {
  const node = snap.nodes.find((n) => n.id === id);
  if (node === undefined) throw new HttpError(404, 'NODE_NOT_FOUND');
  const topics = snap.topics.flatMap((t) => {
    const own = t.nodes.find((n) => n.node === id);
    if (own === undefined) return [];
    const channels = t.channels.flatMap((c) => {
      const stats = c.nodes.find((n) => n.node === id);
      return stats === undefined ? [] : [{ name: c.name, ...stats, clients: c.clients.filter((k) => k.node === id) }];
    });
    return [{ name: t.name, ...own, channels }];
  });
  return {
    node,
    topics,
    total_messages: node.messageCount,
    total_clients: node.clientCount,
    errors: snap.errors,
  };
}

/** NSQ's GET /api/counter: message_count per topic:channel:node, plus the total and its rate. */
function counter(snap: ClusterSnapshot) {
  const stats: Record<string, { node: string; topic_name: string; channel_name: string; message_count: number }> = {};
  for (const t of snap.topics) {
    for (const c of t.channels) {
      for (const n of c.nodes) {
        stats[`${t.name}:${c.name}:${n.node}`] = {
          node: n.node,
          topic_name: t.name,
          channel_name: c.name,
          message_count: n.messageCount,
        };
      }
    }
  }
  const failures = snap.errors.map((e) => `${e.source} ${e.address}: ${e.message}`);
  return {
    stats,
    message: failures.length === 0 ? '' : `WARNING: ${failures.join('; ')}`,
    total_messages: snap.totalMessages,
    rate: snap.totalRate,
    rates_at: snap.ratesAt,
  };
}

export interface RoutesHost {
  readonly basePath: string;
  readonly options: AdminOptions;
  readonly logger: Logger;
  readonly metrics: AdminMetrics;
  readonly sessions: Sessions;
  snapshot(): Promise<ClusterSnapshot>;
  lookup(): Promise<LookupState>;
  rateHistory(since: number): RateSeries;
  topicAction(action: TopicAction, topic: string, node: string): Promise<ActionResult>;
  channelAction(action: ChannelAction, topic: string, channel: string, node: string): Promise<ActionResult>;
  configureTopic(topic: string, update: TopicConfigUpdate): Promise<ActionResult>;
  configureChannel(topic: string, channel: string, update: ChannelConfigUpdate): Promise<ActionResult>;
  replay(topic: string, channel: string, from: ReplayFrom): Promise<ActionResult>;
  redrive(from: string, to: string, max: number): Promise<ActionResult>;
  notify(req: FastifyRequest, result: ActionResult): void;
}

export function listen(admin: RoutesHost): { app: FastifyInstance; wss: WebSocketServer } {
  const statics = loadStatic();
  const base = admin.basePath;
  const { options, logger, metrics, sessions } = admin;
  const { route, plain, app } = createV1App(logger);

  /** True without a password; else with it as a Bearer token or with a live session cookie. */
  const isLoggedIn = (req: FastifyRequest): boolean => {
    if (options.adminPassword === '') return true;
    if (bearerMatches(req.headers.authorization, [options.adminPassword])) return true;
    const id = cookie(req, SESSION_COOKIE);
    return id !== undefined && sessions.isLive(id);
  };
  const isAdmin = (req: FastifyRequest): boolean => {
    if (options.adminUsers.length === 0) return true;
    const user = req.headers[options.aclHttpHeader.toLowerCase()];
    return typeof user === 'string' && options.adminUsers.includes(user);
  };
  const mayAct = (req: FastifyRequest): void => {
    if (!isLoggedIn(req)) throw new HttpError(401, 'UNAUTHORIZED');
    if (!isAdmin(req)) throw new HttpError(403, 'FORBIDDEN');
  };
  const sessionCookie = (id: string, maxAgeS: number): string =>
    `${SESSION_COOKIE}=${id}; Path=${base}/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict`;

  // Before any route: a state-changing request a browser sent from another page is refused.
  app.addHook('onRequest', async (req, reply) => {
    const refusal = csrfRefusal(req.method, req.headers);
    if (refusal === null) return;
    metrics.refusedRequest(refusal.message);
    const origin = req.headers.origin ?? req.headers['sec-fetch-site'] ?? 'no origin';
    logger.warn(`refused ${req.method} ${req.url.split('?')[0]} (${origin}) from ${req.ip}: ${refusal.message}`);
    return reply.code(403).type(JSON_TYPE).send(goJson(refusal));
  });

  // ---- the UI ----
  const index = (_req: FastifyRequest, reply: FastifyReply) =>
    reply.type(STATIC_FILES['index.html']).header('Cache-Control', 'no-cache').send(statics.get('index.html'));
  plain('GET', `${base}/`, index);
  if (base !== '') plain('GET', base, (_req, reply) => reply.redirect(`${base}/`));
  plain('GET', `${base}/static/:file`, (req, reply) => {
    const file = (req.params as { file: string }).file;
    const body = statics.get(file);
    if (body === undefined || file === 'index.html') return reply.code(404).type(TEXT_TYPE).send('not found');
    return reply.type(STATIC_FILES[file]).header('Cache-Control', 'no-cache').send(body);
  });
  // Browsers ask for /favicon.ico at the root whatever the base path; the icon is an SVG.
  const favicon = (_req: FastifyRequest, reply: FastifyReply) =>
    reply.type(STATIC_FILES['favicon.svg']).header('Cache-Control', 'max-age=86400').send(statics.get('favicon.svg'));
  plain('GET', '/favicon.ico', favicon);
  if (base !== '') plain('GET', `${base}/favicon.ico`, favicon);
  plain('GET', `${base}/ping`, (_req, reply) => reply.type(TEXT_TYPE).send('OK'));
  plain('GET', `${base}/metrics`, async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  // ---- reads ----
  route('GET', `${base}/api/snapshot`, () => admin.snapshot());
  route('GET', `${base}/api/topics`, async () => {
    const { topics, errors, ratesAt } = await admin.snapshot();
    return { topics, ratesAt, errors };
  });
  route('GET', `${base}/api/topics/:topic`, async (req) => {
    const name = (req.params as { topic: string }).topic;
    const { topics, errors, ratesAt } = await admin.snapshot();
    const topic = topics.find((t) => t.name === name);
    if (topic === undefined) throw new HttpError(404, 'TOPIC_NOT_FOUND');
    return { topic, ratesAt, errors };
  });
  route('GET', `${base}/api/topics/:topic/:channel`, async (req) => {
    const params = req.params as { topic: string; channel: string };
    const { topics, errors, ratesAt } = await admin.snapshot();
    const channel = topics.find((t) => t.name === params.topic)?.channels.find((c) => c.name === params.channel);
    if (channel === undefined) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
    return { channel, ratesAt, errors };
  });
  route('GET', `${base}/api/nodes`, async () => {
    const { nodes, lookupds, errors } = await admin.snapshot();
    return { nodes, lookupds, errors };
  });
  route('GET', `${base}/api/nodes/:node`, async (req) =>
    nodeDetail(await admin.snapshot(), (req.params as { node: string }).node),
  );
  route('GET', `${base}/api/lookup`, () => admin.lookup());
  route('GET', `${base}/api/counter`, async () => counter(await admin.snapshot()));
  route('GET', `${base}/api/history`, (_req, q) => {
    const since = Number(param(q, 'since') || Date.now() - DEFAULT_HISTORY_MS);
    if (!Number.isFinite(since)) throw new HttpError(400, 'INVALID_ARG_SINCE');
    return admin.rateHistory(since);
  });
  route('GET', `${base}/api/me`, (req) => ({
    admin: isAdmin(req),
    aclEnabled: options.adminUsers.length > 0,
    loginRequired: options.adminPassword !== '',
    loggedIn: isLoggedIn(req),
  }));

  // ---- built-in login (--admin-password-file): `{"password": "..."}` → a session cookie ----
  plain('POST', `${base}/api/login`, async (req, reply) => {
    const password = options.adminPassword;
    if (password === '') return reply.code(404).type(TEXT_TYPE).send('login disabled');
    const given = await readBody(req).then(
      (body) => body.password,
      () => undefined,
    );
    if (given === undefined || !constantTimeEqual(given, password)) {
      logger.warn(`login failed from ${req.ip}`);
      return reply
        .code(401)
        .type(JSON_TYPE)
        .send(goJson({ message: 'UNAUTHORIZED' }));
    }
    const id = sessions.open();
    logger.info(`login from ${req.ip}`);
    return reply
      .header('Set-Cookie', sessionCookie(id, SESSION_TTL_MS / 1000))
      .type(JSON_TYPE)
      .send(goJson({ loggedIn: true }));
  });
  route('POST', `${base}/api/logout`, (req) => {
    const id = cookie(req, SESSION_COOKIE);
    if (id !== undefined) sessions.end(id);
    return EMPTY;
  });

  // ---- actions ----
  /** An action: the access check, the action, its notification and NSQ's `message`. */
  const acting = async (req: FastifyRequest, run: () => Promise<ActionResult>) => {
    mayAct(req);
    const result = await run();
    admin.notify(req, result);
    return withMessage(result);
  };
  const topicAction = (req: FastifyRequest, action: TopicAction, topic: string, node: string) =>
    acting(req, () => admin.topicAction(action, topic, node));
  const channelAction = (req: FastifyRequest, action: ChannelAction, topic: string, channel: string, node: string) =>
    acting(req, () => admin.channelAction(action, topic, channel, node));

  // Delivery policies: static paths, so they win over the :action routes below. `prepare`
  // validates the parameters (400s before any access check, as the other actions) and returns the action.
  const policyRoute = (path: string, prepare: (params: Map<string, string>) => () => Promise<ActionResult>) =>
    route('POST', `${base}/api/${path}`, async (req, q) => acting(req, prepare(await actionParams(req, q))));
  const channelOf = (params: Map<string, string>) => ({
    topic: validTopic(params.get('topic') ?? ''),
    channel: validChannel(params.get('channel') ?? ''),
  });
  policyRoute('topic/config', (params) => {
    const topic = validTopic(params.get('topic') ?? '');
    const update = topicUpdate(params);
    return () => admin.configureTopic(topic, update);
  });
  policyRoute('channel/config', (params) => {
    const { topic, channel } = channelOf(params);
    const update = channelUpdate(params);
    return () => admin.configureChannel(topic, channel, update);
  });
  policyRoute('channel/replay', (params) => {
    const { topic, channel } = channelOf(params);
    const from = replayFrom(params);
    return () => admin.replay(topic, channel, from);
  });
  policyRoute('topic/redrive', (params) => {
    const from = validTopic(params.get('topic') ?? '');
    const to = params.get('to') ?? '';
    if (to === '') throw new HttpError(400, 'MISSING_ARG_TO');
    validTopic(to);
    const max = countParam(params, 'max', 'INVALID_ARG_MAX') ?? 0;
    return () => admin.redrive(from, to, max);
  });

  route('POST', `${base}/api/topic/:action`, (req, q) => {
    const action = TOPIC_ACTIONS.find((a) => a === (req.params as { action: string }).action);
    if (action === undefined) throw new HttpError(404, 'NOT_FOUND');
    const topic = validTopic(param(q, 'topic'));
    const node = param(q, 'node');
    if (action === 'tombstone' && node === '') throw new HttpError(400, 'MISSING_ARG_NODE');
    return topicAction(req, action, topic, node);
  });
  route('POST', `${base}/api/channel/:action`, (req, q) => {
    const action = CHANNEL_ACTIONS.find((a) => a === (req.params as { action: string }).action);
    if (action === undefined) throw new HttpError(404, 'NOT_FOUND');
    const topic = validTopic(param(q, 'topic'));
    const channel = validChannel(param(q, 'channel'));
    return channelAction(req, action, topic, channel, param(q, 'node'));
  });

  route('POST', `${base}/api/topics`, async (req) => {
    const body = await readBody(req);
    const topic = validTopic(body.topic ?? '');
    const channel = body.channel ?? '';
    if (channel !== '') validChannel(channel);
    const created = await topicAction(req, 'create', topic, '');
    if (channel === '') return created;
    const both = await channelAction(req, 'create', topic, channel, '');
    return withMessage({ ...both, errors: [...created.errors, ...both.errors] });
  });
  const nsqAction = async (req: FastifyRequest): Promise<{ action: 'pause' | 'unpause' | 'empty'; node: string }> => {
    const body = await readBody(req);
    const action = body.action;
    if (action !== 'pause' && action !== 'unpause' && action !== 'empty') throw new HttpError(400, 'INVALID_ACTION');
    return { action, node: body.node ?? '' };
  };
  route('POST', `${base}/api/topics/:topic`, async (req) => {
    const topic = validTopic((req.params as { topic: string }).topic);
    const { action, node } = await nsqAction(req);
    return topicAction(req, action, topic, node);
  });
  route('POST', `${base}/api/topics/:topic/:channel`, async (req) => {
    const params = req.params as { topic: string; channel: string };
    const topic = validTopic(params.topic);
    const channel = validChannel(params.channel);
    const { action, node } = await nsqAction(req);
    return channelAction(req, action, topic, channel, node);
  });
  route('DELETE', `${base}/api/topics/:topic`, (req) =>
    topicAction(req, 'delete', validTopic((req.params as { topic: string }).topic), ''),
  );
  route('DELETE', `${base}/api/topics/:topic/:channel`, (req) => {
    const params = req.params as { topic: string; channel: string };
    return channelAction(req, 'delete', validTopic(params.topic), validChannel(params.channel), '');
  });
  route('DELETE', `${base}/api/nodes/:node`, async (req) => {
    const topic = validTopic((await readBody(req)).topic ?? '');
    return topicAction(req, 'tombstone', topic, (req.params as { node: string }).node);
  });

  const wss = new WebSocketServer({
    server: app.server,
    path: `${base}/api/ws`,
    // A page on another origin may not read the live view either (WebSockets have no CORS).
    verifyClient: ({ req }: { req: IncomingMessage }) => {
      if (webSocketOriginAllowed(req.headers)) return true;
      metrics.refusedRequest('WEBSOCKET_ORIGIN');
      logger.warn(`refused a WebSocket from ${req.headers.origin} (${req.socket.remoteAddress})`);
      return false;
    },
  });
  return { app, wss };
}
