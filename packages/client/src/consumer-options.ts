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

/**
 * Options of a {@link Consumer} besides the codec. Give `nsqdAddresses`, `lookupdHttpAddresses`,
 * or both.
 */
export interface ConsumerBaseOptions<T> extends IdentifyOptions {
  /** Topic to subscribe to. */
  topic: string;
  /** Channel to subscribe to. */
  channel: string;
  /** nsqd TCP addresses (`host:port`) to connect to directly. */
  nsqdAddresses?: readonly string[];
  /** nsqlookupd HTTP addresses (`host:port` or `http://host:port`) polled for the topic's nsqds. */
  lookupdHttpAddresses?: readonly string[];
  /**
   * Messages in flight at once over all connections (default 1): up to this many handlers run
   * concurrently.
   */
  maxInFlight?: number;
  /** A message handler, the same as `on('message', handler)`. */
  handler?: MessageHandler<T>;
  /**
   * Deliveries allowed per message (0, the default, means unlimited). A message that fails (or is
   * requeued) on its last attempt, or arrives with more attempts, is given up: `onGiveUp` and the
   * `giveUp` event run, then it is finished.
   */
  maxAttempts?: number;
  /** Called before a message is given up (see `maxAttempts`), e.g. to park it elsewhere. */
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
  /**
   * Bearer token sent with every lookupd request (`Authorization: Bearer <token>`), for an
   * nsq-ts nsqlookupd started with `--http-auth-token` and `--http-auth-reads`. Unset: none is
   * sent, as go-nsq and nsqjs do. It never appears in errors or events.
   */
  lookupdAuthToken?: string;
  /**
   * When connections outnumber `maxInFlight`, how long a connection keeps its RDY 1 before the
   * slot moves on to a waiting connection (default 1000 ms).
   */
  rdyRedistributeIntervalMs?: number;
  /** Deadline for connecting, IDENTIFY and SUB (default 5000 ms). */
  dialTimeoutMs?: number;
  /** First reconnect delay (default 250 ms); doubles per failure, with jitter. */
  reconnectMinDelayMs?: number;
  /** Upper bound of the reconnect delay (default 30000 ms). */
  reconnectMaxDelayMs?: number;
  /** How long `close()` waits for CLOSE_WAIT and for in-flight handlers (default 30000 ms). */
  closeTimeoutMs?: number;
  /**
   * Where handler errors, lookupd failures, connection failures and reconnects are reported
   * (default: warnings and errors on stderr; `null`: nowhere), as well as to `error` listeners.
   */
  logger?: Logger | null;
}

/**
 * The codec option: optional while the body type can hold a Buffer (decoded by
 * {@link rawCodec}), required for any other body type.
 */
export type ConsumerCodecOption<T> = [Buffer] extends [T]
  ? { /** How bodies are decoded (default {@link rawCodec}: Buffers as received). */ codec?: Codec<T> }
  : { /** How bodies are decoded from bytes. */ codec: Codec<T> };

/** Options of a {@link Consumer}: {@link ConsumerBaseOptions} and, for non-Buffer bodies, a codec. */
export type ConsumerOptions<T = Buffer> = ConsumerBaseOptions<T> & ConsumerCodecOption<T>;

/** Events of a {@link Consumer}, with their listener signatures. */
export interface ConsumerEvents<T> {
  /** A delivered message; the handler's outcome finishes or requeues it. */
  message: MessageHandler<T>;
  /**
   * A problem the consumer works around: a handler error, a lookupd failure, a failed connection
   * attempt, an unexpected nsqd error frame. Each message names the nsqd or lookupd.
   */
  error: (error: Error) => void;
  /** A message was given up after `maxAttempts`. */
  giveUp: (message: Message<T>) => void;
  /** Backoff started or continued: RDY 0 everywhere for `delayMs`, then a RDY 1 probe. */
  backoff: (info: { level: number; delayMs: number }) => void;
  /** Backoff ended: full RDY restored. */
  resume: () => void;
  /** A connection to an nsqd is subscribed. */
  connected: (address: string) => void;
  /**
   * A connection to an nsqd closed: `error` says why (nsqd closed it, a read deadline, a socket
   * error); it is null only for a close the consumer asked for.
   */
  disconnected: (address: string, error: Error | null) => void;
}

/** A snapshot of a consumer's state, for monitoring and tests. */
export interface ConsumerStats {
  /** Subscribed connections and their current RDY and in-flight counts. */
  connections: Array<{ address: string; rdy: number; inFlight: number }>;
  /** Messages delivered and not yet finished or requeued. */
  inFlight: number;
  /** Current backoff level (0 = not backing off). */
  backoffLevel: number;
  /** Messages received, finished (FINs sent on a live connection that nsqd did not refuse), requeued, given up. */
  received: number;
  finished: number;
  requeued: number;
  givenUp: number;
}

/**
 * Checks a Consumer's options (throws a ClientError E_INVALID_ARGUMENT naming a bad one) and
 * returns its nsqd and lookupd addresses.
 */
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
