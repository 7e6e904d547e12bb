/** Typed calls for nsq-ts's delivery policies (README "Delivery policies"); errors carry NSQ's code in `nsqMessage`. */
import { parseGoDuration } from '@nsq-ts/go-compat';
import { type NsqHttpClient, NsqHttpError, nsqBaseUrl, nsqQuery } from './nsq-http-client.js';

/** A channel's settings in effect (its own, or nsqd's --max-attempts / --dead-letter-topic). */
export interface ChannelConfig {
  /** 0 is unlimited, as in NSQ. */
  readonly maxAttempts: number;
  /** '' drops given-up messages. */
  readonly deadLetterTopic: string;
}

export interface ChannelConfigUpdate {
  readonly maxAttempts?: number;
  readonly deadLetterTopic?: string;
}

export type OverflowPolicy = 'reject' | 'drop_oldest';

/** 0 is "off" for every number. */
export interface TopicConfig {
  readonly maxDepth: number;
  /** Enforced as a message count from the mean body size. */
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;
  /** ms; absent when the nsqd has no TTL setting. */
  readonly messageTtlMs?: number;
  /** ms; absent when the nsqd has no retention. */
  readonly retentionMs?: number;
}

/** A Go duration (`90s`, `24h`, `0`) or milliseconds. */
export type PolicyDuration = string | number;

export interface TopicConfigUpdate {
  readonly maxDepth?: number;
  readonly maxBytes?: number;
  readonly overflow?: OverflowPolicy;
  readonly messageTtl?: PolicyDuration;
  readonly retention?: PolicyDuration;
}

/** The first retained message published at or after `since` (Date, unix ms or RFC 3339), or a log `offset`. */
export type ReplayFrom = { readonly since: Date | number | string } | { readonly offset: number };

export interface RedriveResult {
  readonly moved: number;
}

/** A reply that is not what the endpoint answers: the same error type as any other failure. */
function badReply(method: 'GET' | 'POST', address: string, pathAndQuery: string, what: string): NsqHttpError {
  return new NsqHttpError(
    method,
    address,
    `${nsqBaseUrl(address)}${pathAndQuery}`,
    200,
    '',
    `the reply is not ${what}`,
  );
}

/** A Go duration text, or a number of milliseconds. */
function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value !== 'string') return undefined;
  try {
    return parseGoDuration(value);
  } catch {
    return undefined;
  }
}

/** Milliseconds get their unit, text goes as it is. */
function durationParam(value: PolicyDuration | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'number' ? (value === 0 ? '0' : `${value}ms`) : value;
}

function integerParam(value: number | undefined): string | undefined {
  return value === undefined ? undefined : String(value);
}

async function postOk(http: NsqHttpClient, address: string, pathAndQuery: string): Promise<void> {
  await http.post(address, pathAndQuery);
}

export async function getChannelConfig(
  http: NsqHttpClient,
  address: string,
  topic: string,
  channel: string,
): Promise<ChannelConfig> {
  const path = `/channel/config${nsqQuery({ topic, channel })}`;
  const body = await http.get<{ max_attempts?: unknown; dead_letter_topic?: unknown }>(address, path);
  if (typeof body.max_attempts !== 'number' || typeof body.dead_letter_topic !== 'string') {
    throw badReply('GET', address, path, 'a channel config');
  }
  return { maxAttempts: body.max_attempts, deadLetterTopic: body.dead_letter_topic };
}

/** nsqd refuses an empty update: MISSING_ARG_CONFIG. */
export function setChannelConfig(
  http: NsqHttpClient,
  address: string,
  topic: string,
  channel: string,
  update: ChannelConfigUpdate,
): Promise<void> {
  const q = nsqQuery({
    topic,
    channel,
    max_attempts: integerParam(update.maxAttempts),
    dead_letter_topic: update.deadLetterTopic,
  });
  return postOk(http, address, `/channel/config${q}`);
}

export async function getTopicConfig(http: NsqHttpClient, address: string, topic: string): Promise<TopicConfig> {
  const path = `/topic/config${nsqQuery({ topic })}`;
  const body = await http.get<Record<string, unknown>>(address, path);
  const { max_depth: maxDepth, max_bytes: maxBytes, overflow } = body;
  if (
    typeof maxDepth !== 'number' ||
    typeof maxBytes !== 'number' ||
    (overflow !== 'reject' && overflow !== 'drop_oldest')
  ) {
    throw badReply('GET', address, path, 'a topic config');
  }
  const messageTtlMs = durationMs(body.message_ttl);
  const retentionMs = durationMs(body.retention);
  return {
    maxDepth,
    maxBytes,
    overflow,
    ...(messageTtlMs === undefined ? {} : { messageTtlMs }),
    ...(retentionMs === undefined ? {} : { retentionMs }),
  };
}

export function setTopicConfig(
  http: NsqHttpClient,
  address: string,
  topic: string,
  update: TopicConfigUpdate,
): Promise<void> {
  const q = nsqQuery({
    topic,
    max_depth: integerParam(update.maxDepth),
    max_bytes: integerParam(update.maxBytes),
    overflow: update.overflow,
    message_ttl: durationParam(update.messageTtl),
    retention: durationParam(update.retention),
  });
  return postOk(http, address, `/topic/config${q}`);
}

/** Unix milliseconds, or the text given (RFC 3339). */
function sinceParam(since: Date | number | string): string {
  return String(since instanceof Date ? since.getTime() : since);
}

/** A time no longer retained fails with 400 `REPLAY_UNAVAILABLE …`, naming the earliest time available. */
export function replayChannel(
  http: NsqHttpClient,
  address: string,
  topic: string,
  channel: string,
  from: ReplayFrom,
): Promise<void> {
  const where = 'since' in from ? { since: sinceParam(from.since) } : { offset: String(from.offset) };
  return postOk(http, address, `/channel/replay${nsqQuery({ topic, channel, ...where })}`);
}

/** `POST /topic/redrive`: moves at most `max` dead letters back into `to`, each once. */
export async function redriveTopic(
  http: NsqHttpClient,
  address: string,
  deadLetterTopic: string,
  to: string,
  options: { readonly max?: number } = {},
): Promise<RedriveResult> {
  const path = `/topic/redrive${nsqQuery({ topic: deadLetterTopic, to, max: integerParam(options.max) })}`;
  const body = (await http.post(address, path)) as { moved?: unknown } | string | null;
  if (typeof body !== 'object' || body === null || typeof body.moved !== 'number') {
    throw badReply('POST', address, path, 'a redrive result ({"moved": N})');
  }
  return { moved: body.moved };
}

/** Whether `err` is nsqd refusing a replay because `since` is older than what it retains. */
export function isReplayUnavailable(err: unknown): err is NsqHttpError {
  return err instanceof NsqHttpError && err.nsqMessage.startsWith('REPLAY_UNAVAILABLE');
}
