import type { Codec } from './codecs.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { IdentifyOptions } from './identify.js';
import type { Logger } from './logger.js';
import type { Message } from './message.js';
import {
  checkAddresses,
  checkChannel,
  checkCodec,
  checkIdentifyOptions,
  checkLogger,
  checkLookupdAddress,
  checkNumber,
  checkTopic,
  checkType,
} from './validate.js';

/** A message handler: resolve to finish the message, throw (or reject) to requeue it with backoff. */
export type MessageHandler<T> = (message: Message<T>) => unknown;

/** Give `nsqdAddresses`, `lookupdHttpAddresses`, or both. */
export interface ConsumerBaseOptions<T> extends IdentifyOptions {
  topic: string;
  channel: string;
  /** nsqd TCP addresses (`host:port`) to connect to directly. */
  nsqdAddresses?: readonly string[];
  /** nsqlookupd HTTP addresses (`host:port` or `http://host:port`) polled for the topic's nsqds. */
  lookupdHttpAddresses?: readonly string[];
  /** Messages in flight (so handlers running) at once over all connections (default 1). */
  maxInFlight?: number;
  handler?: MessageHandler<T>;
  /** Deliveries allowed per message (default 0: unlimited); past it a message is given up and finished. */
  maxAttempts?: number;
  onGiveUp?: (message: Message<T>) => unknown;
  /** Base requeue delay when none is given: this × attempts (default 90000 ms, as go-nsq). */
  requeueDelayMs?: number;
  /** Upper bound of the computed requeue delay (default 900000 ms). */
  maxRequeueDelayMs?: number;
  /** Backoff delay after the first failure (default 1000 ms); doubles per failure, with jitter. */
  backoffMinDelayMs?: number;
  /** Upper bound of the backoff delay (default 120000 ms). */
  backoffMaxDelayMs?: number;
  /** TOUCH messages automatically while they are being handled (default false). */
  autoTouch?: boolean;
  /** How often lookupds are polled (default 60000 ms), each interval stretched by up to 30%. */
  lookupdPollIntervalMs?: number;
  /** Timeout of one lookupd request (default 5000 ms). */
  lookupdTimeoutMs?: number;
  /** Bearer token for an nsq-ts nsqlookupd with `--http-auth-reads`; never in errors or events. */
  lookupdAuthToken?: string;
  /** With more connections than `maxInFlight`: how long one keeps its RDY 1 (default 1000 ms). */
  rdyRedistributeIntervalMs?: number;
  /** Deadline for connecting, IDENTIFY and SUB (default 5000 ms). */
  dialTimeoutMs?: number;
  /** First reconnect delay (default 250 ms); doubles per failure, with jitter. */
  reconnectMinDelayMs?: number;
  /** Upper bound of the reconnect delay (default 30000 ms). */
  reconnectMaxDelayMs?: number;
  /** How long `close()` waits for CLOSE_WAIT and for in-flight handlers (default 30000 ms). */
  closeTimeoutMs?: number;
  /** Where problems are reported besides `error` listeners (default: stderr; `null`: nowhere). */
  logger?: Logger | null;
}

/** Optional while the body type can hold a Buffer ({@link rawCodec}), required otherwise. */
export type ConsumerCodecOption<T> = [Buffer] extends [T]
  ? { /** How bodies are decoded (default {@link rawCodec}: Buffers as received). */ codec?: Codec<T> }
  : { /** How bodies are decoded from bytes. */ codec: Codec<T> };

export type ConsumerOptions<T = Buffer> = ConsumerBaseOptions<T> & ConsumerCodecOption<T>;

export interface ConsumerEvents<T> {
  message: MessageHandler<T>;
  /** A problem the consumer works around (handler error, lookupd failure, failed connection, error frame). */
  error: (error: Error) => void;
  /** A message was given up after `maxAttempts`. */
  giveUp: (message: Message<T>) => void;
  /** Backoff started or continued: RDY 0 everywhere for `delayMs`, then a RDY 1 probe. */
  backoff: (info: { level: number; delayMs: number }) => void;
  /** Backoff ended: full RDY restored. */
  resume: () => void;
  connected: (address: string) => void;
  /** `error` is null only for a close the consumer asked for. */
  disconnected: (address: string, error: Error | null) => void;
}

export interface ConsumerStats {
  connections: Array<{ address: string; rdy: number; inFlight: number }>;
  inFlight: number;
  /** Current backoff level (0 = not backing off). */
  backoffLevel: number;
  /** FINs count when sent on a live connection and not refused by nsqd. */
  received: number;
  finished: number;
  requeued: number;
  givenUp: number;
}

/** Throws a ClientError E_INVALID_ARGUMENT naming a bad option. */
export function checkConsumerOptions<T>(o: ConsumerBaseOptions<T> & { codec?: Codec<T> }): {
  nsqds: string[];
  lookupds: string[];
} {
  checkTopic(o.topic);
  checkChannel(o.channel);
  const nsqds = checkAddresses('nsqdAddresses', o.nsqdAddresses);
  const lookupds = checkAddresses('lookupdHttpAddresses', o.lookupdHttpAddresses, checkLookupdAddress);
  if (nsqds.length === 0 && lookupds.length === 0) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'Consumer needs nsqdAddresses or lookupdHttpAddresses');
  }
  checkCodec(o.codec, 'decode');
  checkLogger(o.logger);
  checkIdentifyOptions(o);
  checkType('handler', o.handler, 'function');
  checkType('onGiveUp', o.onGiveUp, 'function');
  checkType('lookupdAuthToken', o.lookupdAuthToken, 'string');
  checkType('autoTouch', o.autoTouch, 'boolean');
  checkNumber('maxInFlight', o.maxInFlight, { min: 1, integer: true });
  checkNumber('maxAttempts', o.maxAttempts, { min: 0, max: 65535, integer: true });
  for (const name of [
    'dialTimeoutMs',
    'closeTimeoutMs',
    'lookupdPollIntervalMs',
    'lookupdTimeoutMs',
    'rdyRedistributeIntervalMs',
    'reconnectMinDelayMs',
    'backoffMinDelayMs',
  ] as const) {
    checkNumber(name, o[name], { min: 1 });
  }
  checkNumber('requeueDelayMs', o.requeueDelayMs);
  checkNumber('maxRequeueDelayMs', o.maxRequeueDelayMs);
  checkNumber('reconnectMaxDelayMs', o.reconnectMaxDelayMs, { min: o.reconnectMinDelayMs ?? 1 });
  checkNumber('backoffMaxDelayMs', o.backoffMaxDelayMs, { min: o.backoffMinDelayMs ?? 1 });
  return { nsqds, lookupds };
}
