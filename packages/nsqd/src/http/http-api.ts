import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { boolParam, firstValue, formatGoDuration, type GoQuery, parseHostPort } from '@nsq-ts/go-compat';
import { isValidChannelName, isValidTopicName, scanMpubBody } from '@nsq-ts/protocol';
import { createV1Router, EMPTY, goDurationParam, HttpError, TEXT_TYPE, Text, type V1Router } from '@nsq-ts/server-kit';
import type { Channel } from '../channel.js';
import type { Clock } from '../clock.js';
import { NSQD_FLAGS } from '../config/nsqd-flags.js';
import type { TopicSettings } from '../durable-state.js';
import type { Logger } from '../logger.js';
import type { NsqdMetrics } from '../metrics/prometheus.js';
import { LOG_LEVELS, type LogLevel, type NsqdOptions } from '../options.js';
import { collectStats, type StatsSource } from '../stats/collect.js';
import { formatStatsText } from '../stats/text.js';
import { type Topic, TopicFullError } from '../topic.js';
import { OutcomeUnknownError } from '../topic-store.js';
import { VERSION } from '../version.js';

/** nsqd's HTTP API (nsq-spec §3), on the V1 conventions of @nsq-ts/server-kit. */

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Options GET /config/:opt refuses to show. */
const SECRET_OPTIONS: ReadonlySet<string> = new Set(['httpAuthTokens', 'lookupdHttpAuthToken']);

/** What the HTTP API works on (an `Nsqd`). */
export interface HttpHost extends StatsSource {
  readonly options: NsqdOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly tcpAddress: string;
  readonly httpAddress: string;
  readonly httpsAddress: string;
  /** The Prometheus registry, made on the first scrape. */
  metrics(): Promise<NsqdMetrics>;
  /** The topic, created on first use. */
  getTopic(name: string): Topic;
  deleteTopic(name: string): boolean;
  setLookupdTcpAddresses(addresses: string[]): void;
  setLogLevel(level: LogLevel): void;
  /** With --ha-group: this member's role, epoch, leader and lag (GET /ha), shown in /stats too; else null. */
  haStatus(): Readonly<Record<string, unknown>> | null;
}

export function createHttpApi(nsqd: HttpHost): V1Router['handle'] {
  const { route, plain, handle } = createV1Router(nsqd.logger, {
    auth: { tokens: nsqd.options.httpAuthTokens, reads: nsqd.options.httpAuthReads },
    before: (req, res) => tlsRequired(nsqd, req, res),
  });

  plain('GET', '/ping', (_req, res) => {
    const err = nsqd.healthError();
    res.writeHead(err === null ? 200 : 500, { 'Content-Type': TEXT_TYPE });
    res.end(err === null ? 'OK' : `NOK - ${err}`);
  });

  route('GET', '/info', () => ({
    version: VERSION,
    broadcast_address: nsqd.options.broadcastAddress,
    hostname: hostname(),
    http_port: portOf(nsqd.httpAddress),
    tcp_port: portOf(nsqd.tcpAddress),
    start_time: nsqd.startTimeS,
    max_heartbeat_interval: nsqd.options.maxHeartbeatIntervalMs * 1e6,
    max_output_buffer_size: nsqd.options.maxOutputBufferSize,
    max_output_buffer_timeout: nsqd.options.maxOutputBufferTimeoutMs * 1e6,
    max_deflate_level: nsqd.options.maxDeflateLevel,
  }));

  route('POST', '/pub', async (req) => {
    const o = nsqd.options;
    // The body is checked before the topic (nsq-spec §3.2).
    if (contentLength(req.raw) > o.maxMsgSize) throw new HttpError(413, 'MSG_TOO_BIG');
    const body = await readBody(req.raw, o.maxMsgSize);
    if (body === null) throw new HttpError(413, 'MSG_TOO_BIG');
    if (body.length === 0) throw new HttpError(400, 'MSG_EMPTY');
    const query = req.query();
    const topic = topicFromQuery(query);
    const deferText = firstValue(query, 'defer');
    if (deferText !== null) {
      const deferMs = /^[+-]?\d+$/.test(deferText) ? Number(deferText) : Number.NaN;
      if (!(deferMs >= 0 && deferMs <= o.maxReqTimeoutMs)) throw new HttpError(400, 'INVALID_DEFER');
      await stored(req.raw, () => topic.publishDeferred(body, deferMs));
    } else {
      await stored(req.raw, () => topic.publish(body));
    }
    return new Text('OK');
  });

  route('POST', '/mpub', async (req) => {
    const o = nsqd.options;
    if (contentLength(req.raw) > o.maxBodySize) throw new HttpError(413, 'BODY_TOO_BIG');
    const query = req.query();
    const topic = topicFromQuery(query);
    const body = await readBody(req.raw, o.maxBodySize);
    if (body === null) throw new HttpError(413, 'BODY_TOO_BIG');
    const binary = firstValue(query, 'binary');
    if (binary !== null && binary !== 'false' && binary !== '0') {
      await stored(req.raw, () => publishBinary(topic, body));
    } else {
      await stored(req.raw, () => publishLines(topic, body));
    }
    return new Text('OK');
  });

  /**
   * Runs a publish and waits until it is stored when it had to go to disk. A refused publish
   * (failing disk) is NSQ's answer to a failed PutMessage, 503 EXITING; /ping says NOK meanwhile. One whose
   * outcome is unknown (replication's fence shut while it waited) gets no status: the connection closes.
   */
  async function stored(raw: IncomingMessage, publish: () => Promise<void> | null): Promise<void> {
    try {
      await publish();
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (err instanceof OutcomeUnknownError) {
        // The router logs it; its answer goes nowhere.
        raw.socket.destroy();
        throw err;
      }
      if (err instanceof TopicFullError) throw new HttpError(503, 'TOPIC_FULL');
      nsqd.logger.error(`HTTP: publish failed - ${(err as Error).message}`);
      throw new HttpError(503, 'EXITING');
    }
  }

  function publishBinary(topic: Topic, body: Buffer): Promise<void> | null {
    const o = nsqd.options;
    const starts: number[] = [];
    const lengths: number[] = [];
    const count = scanMpubBody(body, o.maxMsgSize, o.maxBodySize, starts, lengths);
    if (typeof count !== 'number') {
      // The TCP error code without its `E_` (nsq-spec §3.2).
      const code = count.kind === 'count' || count.kind === 'truncated' ? 'BAD_BODY' : 'BAD_MESSAGE';
      throw new HttpError(413, code);
    }
    return topic.publishBatch(body, starts, lengths, count);
  }

  /** Text mode: one message per line, empty lines skipped, all validated before any is kept. */
  function publishLines(topic: Topic, body: Buffer): Promise<void> | null {
    const starts: number[] = [];
    const lengths: number[] = [];
    let at = 0;
    while (at < body.length) {
      let nl = body.indexOf(0x0a, at);
      if (nl < 0) nl = body.length;
      const length = nl - at;
      if (length > nsqd.options.maxMsgSize) throw new HttpError(413, 'MSG_TOO_BIG');
      if (length > 0) {
        starts.push(at);
        lengths.push(length);
      }
      at = nl + 1;
    }
    return starts.length > 0 ? topic.publishBatch(body, starts, lengths, starts.length) : null;
  }

  route('GET', '/stats', (req) => {
    const query = req.query();
    // Go reads every parameter with a '' default, and '' means "no filter".
    const topic = firstValue(query, 'topic') ?? '';
    const channel = firstValue(query, 'channel') ?? '';
    const includeMem = boolParam(firstValue(query, 'include_mem'), true);
    const snapshot = collectStats(nsqd, {
      ...(topic === '' ? {} : { topic }),
      ...(channel === '' ? {} : { channel }),
      includeClients: boolParam(firstValue(query, 'include_clients'), true),
      includeMem,
    });
    const ha = nsqd.haStatus();
    if (firstValue(query, 'format') === 'json') return ha === null ? snapshot : { ...snapshot, ha };
    const text = formatStatsText(snapshot, { startTimeS: nsqd.startTimeS, includeMem, nowMs: nsqd.clock.wallMs() });
    return new Text(ha === null ? text : `${text}\nha: ${JSON.stringify(ha)}\n`);
  });

  // Prometheus exposition; not a V1 endpoint, so no X-NSQ header.
  plain('GET', '/metrics', async (_req, res) => {
    const metrics = await nsqd.metrics();
    const text = await metrics.render();
    res.writeHead(200, { 'Content-Type': metrics.contentType });
    res.end(text);
  });

  // ---- topics ----

  route('POST', '/topic/create', (req) => {
    topicFromQuery(req.query());
    return EMPTY;
  });

  route('POST', '/topic/delete', (req) => {
    const query = req.query();
    const name = firstValue(query, 'topic');
    if (name === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
    if (!nsqd.deleteTopic(name)) throw new HttpError(404, 'TOPIC_NOT_FOUND');
    return EMPTY;
  });

  route('POST', '/topic/empty', (req) => {
    existingTopic(checkedTopicName(req.query())).empty();
    return EMPTY;
  });

  for (const action of ['pause', 'unpause'] as const) {
    route('POST', `/topic/${action}`, (req) => {
      const query = req.query();
      const name = firstValue(query, 'topic');
      if (name === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
      const topic = existingTopic(name);
      if (action === 'pause') topic.pause();
      else topic.unpause();
      return EMPTY;
    });
  }

  // ---- channels: the topic must exist (nsq-spec §7.20) ----

  function topicAndChannel(query: GoQuery): { topic: Topic; channelName: string } {
    const topicName = firstValue(query, 'topic');
    if (topicName === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
    if (!isValidTopicName(topicName)) throw new HttpError(400, 'INVALID_ARG_TOPIC');
    const channelName = firstValue(query, 'channel');
    if (channelName === null) throw new HttpError(400, 'MISSING_ARG_CHANNEL');
    if (!isValidChannelName(channelName)) throw new HttpError(400, 'INVALID_ARG_CHANNEL');
    return { topic: existingTopic(topicName), channelName };
  }

  route('POST', '/channel/create', (req) => {
    const { topic, channelName } = topicAndChannel(req.query());
    topic.getChannel(channelName);
    return EMPTY;
  });

  route('POST', '/channel/delete', (req) => {
    const { topic, channelName } = topicAndChannel(req.query());
    if (!topic.deleteChannel(channelName)) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
    return EMPTY;
  });

  function existingChannel(query: GoQuery): Channel {
    const { topic, channelName } = topicAndChannel(query);
    const channel = topic.channels.get(channelName);
    if (channel === undefined) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
    return channel;
  }

  for (const action of ['empty', 'pause', 'unpause'] as const) {
    route('POST', `/channel/${action}`, (req) => {
      const channel = existingChannel(req.query());
      if (action === 'empty') channel.empty();
      else if (action === 'pause') channel.pause();
      else channel.unpause();
      return EMPTY;
    });
  }

  // ---- delivery policies (issue 19, not in NSQ) ----

  route('POST', '/channel/config', (req) => {
    const query = req.query();
    const channel = existingChannel(query);
    const settings: { maxAttempts?: number; deadLetterTopic?: string } = {};
    const attempts = firstValue(query, 'max_attempts');
    if (attempts !== null) {
      // The wire's attempts field is a uint16.
      if (!/^\d{1,5}$/.test(attempts) || Number(attempts) > 65535) throw new HttpError(400, 'INVALID_MAX_ATTEMPTS');
      settings.maxAttempts = Number(attempts);
    }
    const dead = firstValue(query, 'dead_letter_topic');
    if (dead !== null) {
      if (dead !== '' && !isValidTopicName(dead)) throw new HttpError(400, 'INVALID_TOPIC');
      settings.deadLetterTopic = dead;
    }
    if (attempts === null && dead === null) throw new HttpError(400, 'MISSING_ARG_CONFIG');
    channel.configure(settings);
    return new Text('OK');
  });

  route('POST', '/topic/config', (req) => {
    const query = req.query();
    const topic = existingTopic(checkedTopicName(query));
    const settings: Mutable<TopicSettings> = {};
    const depth = firstValue(query, 'max_depth');
    if (depth !== null) settings.maxDepth = count(depth, 'INVALID_MAX_DEPTH');
    const bytes = firstValue(query, 'max_bytes');
    if (bytes !== null) settings.maxBytes = count(bytes, 'INVALID_MAX_BYTES');
    const overflow = firstValue(query, 'overflow');
    if (overflow !== null) {
      if (overflow !== 'reject' && overflow !== 'drop_oldest') throw new HttpError(400, 'INVALID_OVERFLOW');
      settings.overflow = overflow;
    }
    const ttl = firstValue(query, 'message_ttl');
    if (ttl !== null) settings.messageTtlMs = goDurationParam(ttl, 'INVALID_MESSAGE_TTL');
    const retention = firstValue(query, 'retention');
    if (retention !== null) settings.retentionMs = goDurationParam(retention, 'INVALID_RETENTION');
    if (Object.keys(settings).length === 0) throw new HttpError(400, 'MISSING_ARG_CONFIG');
    topic.configure(settings);
    return new Text('OK');
  });

  route('GET', '/topic/config', (req) => {
    const topic = existingTopic(checkedTopicName(req.query()));
    return {
      max_depth: topic.maxDepth,
      max_bytes: topic.maxBytes,
      overflow: topic.overflow,
      message_ttl: formatGoDuration(topic.messageTtlMs),
      retention: formatGoDuration(topic.retentionMs),
    };
  });

  // Success is an empty 200, as /channel/pause answers.
  route('POST', '/channel/replay', async (req) => {
    const query = req.query();
    const channel = existingChannel(query);
    const topic = existingTopic(channel.topic.name);
    const since = firstValue(query, 'since');
    const offset = firstValue(query, 'offset');
    if (since !== null && offset !== null) throw new HttpError(400, 'INVALID_ARG_SINCE');
    let at: { sinceMs: number } | { offset: number };
    if (since !== null) at = { sinceMs: sinceMs(since) };
    else if (offset !== null) at = { offset: count(offset, 'INVALID_ARG_OFFSET') };
    else throw new HttpError(400, 'MISSING_ARG_SINCE');
    if ('offset' in at && at.offset > topic.tail.end) throw new HttpError(400, 'INVALID_ARG_OFFSET');
    const target = await topic.replayTarget(at);
    if ('earliest' in target) throw new HttpError(400, `REPLAY_UNAVAILABLE: earliest available ${target.earliest}`);
    if (channel.deleted) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
    await topic.replay(channel, target.offset);
    return EMPTY;
  });

  route('POST', '/topic/redrive', async (req) => {
    const query = req.query();
    const name = checkedTopicName(query);
    const from = existingTopic(name);
    const to = firstValue(query, 'to');
    if (to === null) throw new HttpError(400, 'MISSING_ARG_TO');
    if (!isValidTopicName(to) || to === name) throw new HttpError(400, 'INVALID_ARG_TO');
    const maxText = firstValue(query, 'max');
    const max = maxText === null ? Number.POSITIVE_INFINITY : count(maxText, 'INVALID_ARG_MAX');
    return { moved: await from.redrive(nsqd.getTopic(to), max) };
  });

  /** `since`: unix milliseconds or RFC 3339, or 400 INVALID_ARG_SINCE. */
  function sinceMs(text: string): number {
    if (/^\d{1,15}$/.test(text)) return Number(text);
    const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i;
    const ms = rfc3339.test(text) ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(ms)) throw new HttpError(400, 'INVALID_ARG_SINCE');
    return ms;
  }

  /** A non-negative integer setting, or 400 `code`. */
  function count(text: string, code: string): number {
    if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, code);
    return Number(text);
  }

  function checkedTopicName(query: GoQuery): string {
    const name = firstValue(query, 'topic');
    if (name === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
    if (!isValidTopicName(name)) throw new HttpError(400, 'INVALID_TOPIC');
    return name;
  }

  route('GET', '/channel/config', (req) => {
    const channel = existingChannel(req.query());
    return { max_attempts: channel.maxAttempts, dead_letter_topic: channel.deadLetterTopic };
  });

  // ---- config ----

  route('GET', '/config/:opt', (req) => configValue(req.params.opt as string));

  route('PUT', '/config/:opt', async (req) => {
    const opt = req.params.opt as string;
    const limit = nsqd.options.maxMsgSize;
    const body = await readBody(req.raw, limit);
    if (body === null || body.length === 0) throw new HttpError(413, 'INVALID_VALUE');
    const text = body.toString('utf8');
    if (opt === 'nsqlookupd_tcp_addresses') {
      let addresses: unknown;
      try {
        addresses = JSON.parse(text);
      } catch {
        throw new HttpError(400, 'INVALID_VALUE');
      }
      if (!Array.isArray(addresses) || !addresses.every((a) => typeof a === 'string')) {
        throw new HttpError(400, 'INVALID_VALUE');
      }
      nsqd.setLookupdTcpAddresses(addresses);
    } else if (opt === 'log_level') {
      // lg.ParseLogLevel lower-cases the body and trims nothing: "info\n" is invalid.
      const level = LOG_LEVELS.find((l) => l === text.toLowerCase());
      if (level === undefined) throw new HttpError(400, 'INVALID_VALUE');
      nsqd.setLogLevel(level);
    } else {
      throw new HttpError(400, 'INVALID_OPTION');
    }
    return configValue(opt);
  });

  /** Go's JSON of an option: durations in ns, the log level as NSQ's number (INFO = 2). */
  function configValue(opt: string): unknown {
    const flag = NSQD_FLAGS.find((f) => f.option !== null && f.configKeys[0] === opt);
    // Secrets are never shown: a token is not an option one can read back.
    if (flag === undefined || flag.option === null || SECRET_OPTIONS.has(flag.option)) {
      throw new HttpError(400, 'INVALID_OPTION');
    }
    const value = nsqd.options[flag.option];
    if (flag.option === 'logLevel') return LOG_LEVELS.indexOf(value as LogLevel) + 1;
    if (flag.spec.type === 'duration') return (value as number) * 1e6;
    return value;
  }

  // ---- helpers ----

  /** Returns the topic named by `?topic=`, creating it (PUB and /topic/create auto-create). */
  function topicFromQuery(query: GoQuery): Topic {
    const name = firstValue(query, 'topic');
    if (name === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
    if (!isValidTopicName(name)) throw new HttpError(400, 'INVALID_TOPIC');
    return nsqd.getTopic(name);
  }

  function existingTopic(name: string): Topic {
    const topic = nsqd.topics.get(name);
    if (topic === undefined) throw new HttpError(404, 'TOPIC_NOT_FOUND');
    return topic;
  }

  return handle;
}

/**
 * --tls-required=true: the plain listener answers everything with 403 (nsq-spec §3.1), in Go's
 * exact text, before any routing; the HTTPS listener shares the router and passes.
 */
function tlsRequired(nsqd: HttpHost, req: IncomingMessage, res: ServerResponse): boolean {
  if (nsqd.options.tlsRequired !== 'true' || (req.socket as { encrypted?: boolean }).encrypted === true) return false;
  res.writeHead(403, { 'X-NSQ-Content-Type': 'nsq; version=1.0', 'Content-Type': 'application/json; charset=utf-8' });
  res.end(`{"message": "TLS_REQUIRED", "https_port": ${portOf(nsqd.httpsAddress)}}`);
  return true;
}

function portOf(address: string): number {
  return address === '' ? -1 : parseHostPort(address).port;
}

function contentLength(req: IncomingMessage): number {
  const header = req.headers['content-length'];
  return header === undefined ? -1 : Number(header);
}

/** Reads the request body, or returns null as soon as it exceeds `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      total += chunk.length;
      if (total > limit) {
        done = true;
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    });
    req.on('error', reject);
  });
}
