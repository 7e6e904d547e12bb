import { EventEmitter } from 'node:events';
import { CLOSE_WAIT, decodeMessage, ErrorCode, encodeCommand, type ProtocolError } from '@nsq-ts/protocol';
import { backoffDelayMs } from './backoff.js';
import { type Codec, rawCodec } from './codecs.js';
import { Connection, type IdentifyOptions } from './connection.js';
import { HOSTNAME, USER_AGENT } from './defaults.js';
import { ClientError, ClientErrorCode, isPermanentFailure } from './errors.js';
import { Fifo } from './fifo.js';
import { type Logger, resolveLogger } from './logger.js';
import { lookupProducers } from './lookup.js';
import { Message, type MessageOwner } from './message.js';
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

/** One subscribed connection (a new Link per reconnect, so stale messages cannot touch it). */
class Link {
  readonly node: Node;
  readonly conn: Connection;
  subscribed = false;
  rdy = 0;
  /** When `rdy` last changed, for redistribution fairness. */
  rdyChangedAt = 0;
  inFlight = 0;
  closeWait: (() => void) | null = null;
  closeWaitReceived = false;

  constructor(node: Node, conn: Connection) {
    this.node = node;
    this.conn = conn;
  }
}

/** An nsqd address the consumer connects to. */
class Node {
  readonly address: string;
  /** Found through lookupd (dropped when it cannot be reconnected) rather than configured. */
  readonly discovered: boolean;
  link: Link | null = null;
  failures = 0;
  retryTimer: NodeJS.Timeout | null = null;

  constructor(address: string, discovered: boolean) {
    this.address = address;
    this.discovered = discovered;
  }
}

const FIN = 'FIN';
const REQ = 'REQ';
const TOUCH = 'TOUCH';

/**
 * Consumes a topic's channel from one or many nsqds (found directly or through nsqlookupd).
 * One connection per nsqd; `maxInFlight` is spread over the connections, and when there are
 * more connections than `maxInFlight` the RDY slots rotate so none starves. Failures (a handler
 * that throws, `requeue()` with backoff) back off exponentially: RDY 0 everywhere, then RDY 1 on
 * one connection as a probe, then the full window once probes succeed.
 *
 * Messages arrive through `on('message', handler)` / the `handler` option (finished when the
 * handler resolves, requeued when it throws) or through `for await (const msg of consumer)`
 * (the loop body must finish or requeue each message).
 *
 * @typeParam T - the decoded body type (`message.body`), produced by the codec.
 */
export class Consumer<T = Buffer> implements MessageOwner {
  private readonly options: ConsumerBaseOptions<T>;
  private readonly logger: Logger;
  private readonly codec: Codec<T>;
  private readonly events = new EventEmitter();
  private readonly handlers: MessageHandler<T>[] = [];
  private readonly nodes = new Map<string, Node>();
  private readonly maxInFlight: number;
  private readonly redistributeMs: number;
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private isClosing = false;

  private inFlight = 0;
  private drainWaiter: (() => void) | null = null;
  private readonly counters = { received: 0, finished: 0, requeued: 0, givenUp: 0 };

  private backoffLevel = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private readonly maxBackoffLevel: number;

  private redistributeTimer: NodeJS.Timeout | null = null;
  private lookupTimer: NodeJS.Timeout | null = null;
  private touchTimer: NodeJS.Timeout | null = null;
  /** Messages handed to user code and not yet answered; kept only with `autoTouch`. */
  private readonly active = new Set<Message<T>>();

  /** Messages waiting for the async iterator. */
  private readonly buffered = new Fifo<Message<T>>();
  private readonly nextWaiters = new Fifo<{
    resolve: (r: IteratorResult<Message<T>, undefined>) => void;
    reject: (err: Error) => void;
  }>();
  private iteratorEnded = false;
  /** The last message the iterator handed out: abandoned by a `break`, it is requeued at once. */
  private lastYielded: Message<T> | null = null;
  /** Why connect() failed (the consumer then stopped); the async iterator throws it. */
  private connectError: Error | null = null;
  /** Reconnects of connect()'s first attempts, held until it knows whether anything answered. */
  private deferredRetries: Array<() => void> | null = null;

  /** Checks the options (throws a ClientError E_INVALID_ARGUMENT naming a bad one); connects on connect(). */
  constructor(options: ConsumerOptions<T>) {
    const o: ConsumerBaseOptions<T> & { codec?: Codec<T> } = options;
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
    this.options = o;
    this.logger = resolveLogger(o.logger);
    this.codec = o.codec ?? (rawCodec as unknown as Codec<T>);
    this.maxInFlight = o.maxInFlight ?? 1;
    this.redistributeMs = o.rdyRedistributeIntervalMs ?? 1_000;
    const minMs = o.backoffMinDelayMs ?? 1_000;
    const maxMs = o.backoffMaxDelayMs ?? 120_000;
    this.maxBackoffLevel = Math.max(1, Math.ceil(Math.log2(maxMs / minMs)) + 1);
    if (o.handler !== undefined) this.handlers.push(o.handler);
    for (const address of nsqds) this.nodes.set(address, new Node(address, false));
  }

  /** Adds a listener; `message` listeners are handlers whose outcome settles the message. */
  on<E extends keyof ConsumerEvents<T>>(event: E, listener: ConsumerEvents<T>[E]): this {
    if (event === 'message') this.handlers.push(listener as MessageHandler<T>);
    else this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener added with `on`. */
  off<E extends keyof ConsumerEvents<T>>(event: E, listener: ConsumerEvents<T>[E]): this {
    if (event === 'message') {
      const i = this.handlers.indexOf(listener as MessageHandler<T>);
      if (i >= 0) this.handlers.splice(i, 1);
    } else {
      this.events.off(event, listener as (...args: unknown[]) => void);
    }
    return this;
  }

  private emit<E extends Exclude<keyof ConsumerEvents<T>, 'message'>>(
    event: E,
    ...args: Parameters<ConsumerEvents<T>[E]>
  ): void {
    // Without an 'error' listener errors are only logged rather than thrown from a socket callback.
    if (this.events.listenerCount(event) > 0) this.events.emit(event, ...args);
  }

  /** The user's own error goes to `error` listeners as it is; the log says where it came from. */
  private userCodeFailed(caught: unknown, where: string): void {
    const err = caught instanceof Error ? caught : new Error(String(caught));
    this.logger.error(`${where}: ${err.stack ?? err.message}`);
    this.emit('error', err);
  }

  /** Logs a background problem and hands it to the `error` listeners. */
  private report(err: Error, level: 'warn' | 'error' = 'warn'): void {
    this.logger[level](err.message);
    this.emit('error', err);
  }

  /**
   * Connects to the configured nsqds and queries the lookupds once. Resolves when each first
   * attempt is over and something answered (an nsqd, or a lookupd — it may list no nsqd yet;
   * the consumer keeps polling). Rejects when nothing could be reached — no nsqd connected and
   * no lookupd answered — with the first nsqd error (or lookupd error), and then the consumer is
   * closed: nothing retries in the background, so the process can exit.
   */
  connect(): Promise<void> {
    if (this.isClosing)
      return Promise.reject(this.connectError ?? new ClientError(ClientErrorCode.Closed, 'consumer is closed'));
    this.started ??= this.start();
    return this.started;
  }

  private async start(): Promise<void> {
    this.deferredRetries = [];
    const attempts = [...this.nodes.values()].map((n) => this.open(n));
    const lookup = (this.options.lookupdHttpAddresses ?? []).length > 0 ? this.pollLookupds() : null;
    const results = await Promise.allSettled(attempts);
    const lookupErrors = lookup === null ? [] : await lookup;
    const retries = this.deferredRetries;
    this.deferredRetries = null;
    const answered = lookup !== null && lookupErrors.length < (this.options.lookupdHttpAddresses ?? []).length;
    if (answered || results.some((r) => r.status === 'fulfilled')) {
      for (const retry of retries) retry();
      return;
    }
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const err = (failure?.reason as Error | undefined) ?? lookupErrors[0] ?? new Error('nothing to connect to');
    this.connectError = err;
    await this.close();
    throw err;
  }

  // ---- discovery ----

  /** One round of lookupd queries (then the next is scheduled); resolves with their errors. */
  private async pollLookupds(): Promise<Error[]> {
    const lookupds = this.options.lookupdHttpAddresses ?? [];
    const timeoutMs = this.options.lookupdTimeoutMs ?? 5_000;
    const token = this.options.lookupdAuthToken ?? '';
    const results = await Promise.allSettled(
      lookupds.map((l) => lookupProducers(l, this.options.topic, timeoutMs, token)),
    );
    const opens: Promise<void>[] = [];
    const errors: Error[] = [];
    for (const r of results) {
      if (r.status === 'rejected') {
        const err = r.reason instanceof Error ? r.reason : new Error(String(r.reason));
        errors.push(err);
        if (!this.isClosing) this.report(err);
        continue;
      }
      for (const address of r.value) {
        if (this.isClosing || this.nodes.has(address)) continue;
        const node = new Node(address, true);
        this.nodes.set(address, node);
        opens.push(this.open(node).catch(() => undefined));
      }
    }
    await Promise.all(opens);
    if (this.isClosing) return errors;
    const interval = this.options.lookupdPollIntervalMs ?? 60_000;
    // Jitter spreads many consumers' polls so they do not hit the lookupds in step.
    this.lookupTimer = setTimeout(
      () => {
        this.lookupTimer = null;
        void this.pollLookupds();
      },
      interval + Math.random() * interval * 0.3,
    );
    return errors;
  }

  // ---- connections ----

  private open(node: Node): Promise<void> {
    node.retryTimer = null;
    const conn = new Connection(node.address, {
      identify: this.options,
      dialTimeoutMs: this.options.dialTimeoutMs ?? 5_000,
      userAgentDefault: USER_AGENT,
      hostnameDefault: HOSTNAME,
    });
    const link = new Link(node, conn);
    node.link = link;
    return conn
      .open(
        {
          onMessage: (data) => this.onMessage(link, data),
          onResponse: (text) => this.onResponse(link, text),
          onError: (err) => this.onErrorFrame(link, err),
          onClose: (err) => this.onClose(link, err),
        },
        { topic: this.options.topic, channel: this.options.channel },
      )
      .then(
        () => {
          if (this.isClosing) {
            conn.destroy(null);
            return;
          }
          node.failures = 0;
          link.subscribed = true;
          this.emit('connected', node.address);
          this.updateRdy();
        },
        (err: Error) => {
          if (node.link === link) node.link = null;
          link.closeWait?.();
          if (!this.isClosing) {
            this.emit('error', err);
            const retry = () => this.scheduleReconnect(node, true, err);
            // During connect() retries wait for its verdict: if nothing was reachable, none is made.
            if (this.deferredRetries !== null) this.deferredRetries.push(retry);
            else retry();
          }
          throw err;
        },
      );
  }

  /**
   * After a failed attempt or a lost connection: retry with backoff, or — for a refusal no retry
   * can fix, or a discovered nsqd that cannot be reached (the next lookup brings it back) — forget
   * the node. Either way the log says which.
   */
  private scheduleReconnect(node: Node, failedAttempt: boolean, err: Error | null): void {
    if (this.isClosing || this.nodes.get(node.address) !== node) return;
    const reason = err?.message ?? `connection to nsqd ${node.address} closed`;
    if (err !== null && failedAttempt && isPermanentFailure(err)) {
      this.nodes.delete(node.address);
      this.logger.error(`${reason}; not retrying nsqd ${node.address}`);
      return;
    }
    if (node.discovered && failedAttempt) {
      this.nodes.delete(node.address);
      this.logger.warn(`${reason}; dropped until a lookupd lists nsqd ${node.address} again`);
      return;
    }
    node.failures++;
    const delay = backoffDelayMs(node.failures, {
      minMs: this.options.reconnectMinDelayMs ?? 250,
      maxMs: this.options.reconnectMaxDelayMs ?? 30_000,
    });
    this.logger.warn(`${reason}; reconnecting in ${delay} ms`);
    node.retryTimer = setTimeout(() => {
      void this.open(node).catch(() => undefined);
    }, delay);
  }

  private onClose(link: Link, err: Error | null): void {
    link.subscribed = false;
    link.rdy = 0;
    link.closeWait?.();
    const node = link.node;
    if (node.link === link) node.link = null;
    this.emit('disconnected', node.address, err);
    if (!this.isClosing) {
      this.scheduleReconnect(node, false, err);
      this.updateRdy();
    }
  }

  /**
   * An error frame on a subscribed connection. FIN/REQ failures (the message had timed out or
   * was already answered) undo the counter the answer had moved; a fatal one means nsqd is
   * closing the connection.
   */
  private onErrorFrame(link: Link, err: ProtocolError): void {
    if (err.code === ErrorCode.FinFailed) this.counters.finished--;
    else if (err.code === ErrorCode.ReqFailed) this.counters.requeued--;
    if (err.fatal) link.subscribed = false;
    this.report(
      new ClientError(ClientErrorCode.UnexpectedResponse, `nsqd ${link.node.address} sent ${err.message}`, {
        cause: err,
      }),
      err.fatal ? 'error' : 'warn',
    );
  }

  private onResponse(link: Link, text: string): void {
    if (text === CLOSE_WAIT) {
      link.closeWaitReceived = true;
      link.closeWait?.();
      return;
    }
    this.report(new ClientError(ClientErrorCode.UnexpectedResponse, `nsqd ${link.node.address} sent ${text}`));
  }

  private links(): Link[] {
    const out: Link[] = [];
    for (const node of this.nodes.values()) if (node.link?.subscribed) out.push(node.link);
    return out;
  }

  // ---- messages ----

  private onMessage(link: Link, data: Buffer): void {
    const d = decodeMessage(data);
    const msg = new Message<T>(d.id, d.attempts, d.timestamp, d.body, this.codec, this, link, link.node.address);
    link.inFlight++;
    this.inFlight++;
    this.counters.received++;
    const maxAttempts = this.options.maxAttempts ?? 0;
    if (maxAttempts > 0 && msg.attempts > maxAttempts) {
      void this.giveUp(msg, false);
      return;
    }
    if (this.handlers.length > 0) {
      void this.runHandlers(msg);
      return;
    }
    if (this.iteratorEnded) {
      // Nobody will read it any more: give it straight back.
      msg.requeue(0, false);
      return;
    }
    if (this.options.autoTouch) this.trackActive(msg);
    const waiter = this.nextWaiters.shift();
    if (waiter !== undefined) this.yieldMessage(msg, waiter.resolve);
    else this.buffered.push(msg);
  }

  private async runHandlers(msg: Message<T>): Promise<void> {
    if (this.options.autoTouch) this.trackActive(msg);
    try {
      for (const handler of this.handlers) await handler(msg);
      msg.finish();
    } catch (caught) {
      this.userCodeFailed(caught, `handler failed for message ${msg.id} from nsqd ${msg.nsqdAddress}`);
      msg.requeue(undefined, true);
    }
  }

  /** @internal MessageOwner */
  finish(msg: Message<unknown>): void {
    // A FIN that cannot be sent is not counted: nsqd will redeliver the message.
    if (this.write(msg, encodeCommand(FIN, [msg.id]))) this.counters.finished++;
    this.settled(msg, 1);
  }

  /** @internal MessageOwner */
  requeue(msg: Message<unknown>, delayMs: number | undefined, backoff: boolean): void {
    const maxAttempts = this.options.maxAttempts ?? 0;
    if (maxAttempts > 0 && msg.attempts >= maxAttempts && !this.isClosing) {
      void this.giveUp(msg as Message<T>, backoff);
      return;
    }
    const delay =
      delayMs ??
      Math.min((this.options.requeueDelayMs ?? 90_000) * msg.attempts, this.options.maxRequeueDelayMs ?? 900_000);
    if (this.write(msg, encodeCommand(REQ, [msg.id, String(Math.max(0, Math.round(delay)))]))) {
      this.counters.requeued++;
    }
    this.settled(msg, backoff ? -1 : 0);
  }

  /** @internal MessageOwner */
  touch(msg: Message<unknown>): void {
    this.write(msg, encodeCommand(TOUCH, [msg.id]));
  }

  private async giveUp(msg: Message<T>, failed: boolean): Promise<void> {
    this.counters.givenUp++;
    try {
      await this.options.onGiveUp?.(msg);
      this.emit('giveUp', msg);
    } catch (caught) {
      this.userCodeFailed(caught, `onGiveUp failed for message ${msg.id}`);
    }
    this.logger.warn(`gave up message ${msg.id} from nsqd ${msg.nsqdAddress} after ${msg.attempts} attempts`);
    this.write(msg, encodeCommand(FIN, [msg.id]));
    this.settled(msg, failed ? -1 : 0);
  }

  /**
   * Writes on the connection that delivered `msg`, if it is still up (else nsqd redelivers);
   * false when it was not.
   */
  private write(msg: Message<unknown>, command: Buffer): boolean {
    const link = msg.connectionRef as Link;
    if (link.conn.isClosed) return false;
    link.conn.write(command);
    return true;
  }

  /** Bookkeeping after a message was answered; `outcome` 1 success, -1 failure, 0 neutral. */
  private settled(msg: Message<unknown>, outcome: -1 | 0 | 1): void {
    const link = msg.connectionRef as Link;
    link.inFlight--;
    this.inFlight--;
    if (this.options.autoTouch) this.active.delete(msg as Message<T>);
    if (this.inFlight === 0) this.drainWaiter?.();
    if (this.isClosing) return;
    if (outcome < 0) this.backoffSignal(true);
    else if (outcome > 0 && this.backoffLevel > 0) this.backoffSignal(false);
    else if (this.links().length > this.maxInFlight) this.fillScarceRdy();
  }

  // ---- automatic touch ----

  private trackActive(msg: Message<T>): void {
    this.active.add(msg);
    if (this.touchTimer !== null) return;
    const link = msg.connectionRef as Link;
    const periodMs = Math.max(100, Math.floor(link.conn.negotiated.msgTimeoutMs / 4));
    // One sweep timer for all messages: touch each once half its timeout has passed.
    this.touchTimer = setInterval(() => {
      const now = Date.now();
      for (const m of this.active) {
        const timeoutMs = (m.connectionRef as Link).conn.negotiated.msgTimeoutMs;
        if (now - m.touchedAt >= timeoutMs / 2) m.touch();
      }
      if (this.active.size === 0 && this.touchTimer !== null) {
        clearInterval(this.touchTimer);
        this.touchTimer = null;
      }
    }, periodMs);
  }

  // ---- RDY ----

  private setRdy(link: Link, count: number): void {
    const n = Math.min(count, link.conn.negotiated.maxRdyCount);
    if (link.rdy === n || !link.subscribed) return;
    link.rdy = n;
    link.rdyChangedAt = Date.now();
    link.conn.write(encodeCommand('RDY', [String(n)]));
  }

  /** Spreads `maxInFlight` over the subscribed connections (or lets backoff decide). */
  private updateRdy(): void {
    if (this.isClosing) return;
    const links = this.links();
    if (links.length === 0) return;
    if (this.backoffLevel > 0) {
      // Backing off: new connections start at RDY 0; the probe timer hands out RDY 1.
      for (const l of links) if (this.backoffTimer !== null) this.setRdy(l, 0);
      return;
    }
    if (links.length <= this.maxInFlight) {
      this.stopRedistribution();
      const per = Math.floor(this.maxInFlight / links.length);
      const extra = this.maxInFlight % links.length;
      links.forEach((l, i) => {
        this.setRdy(l, per + (i < extra ? 1 : 0));
      });
      return;
    }
    // More connections than slots: RDY 1 on at most maxInFlight of them, rotated by a timer.
    for (const l of links) if (l.rdy > 1) this.setRdy(l, 1);
    const granted = links.filter((l) => l.rdy > 0);
    for (const l of granted.slice(this.maxInFlight)) this.setRdy(l, 0);
    this.fillScarceRdy();
    this.startRedistribution();
  }

  /** Grants RDY 1 to waiting connections, longest-waiting first, within the free budget. */
  private fillScarceRdy(): void {
    if (this.backoffLevel > 0 || this.isClosing) return;
    const links = this.links();
    let used = 0;
    for (const l of links) used += Math.max(l.rdy, l.inFlight);
    if (used >= this.maxInFlight) return;
    const waiting = links.filter((l) => l.rdy === 0).sort((a, b) => a.rdyChangedAt - b.rdyChangedAt);
    for (const l of waiting) {
      if (used >= this.maxInFlight) break;
      if (l.inFlight > 0) continue;
      this.setRdy(l, 1);
      used++;
    }
  }

  private startRedistribution(): void {
    if (this.redistributeTimer !== null) return;
    this.redistributeTimer = setInterval(() => this.redistribute(), this.redistributeMs);
  }

  private stopRedistribution(): void {
    if (this.redistributeTimer === null) return;
    clearInterval(this.redistributeTimer);
    this.redistributeTimer = null;
  }

  /** Takes RDY from connections that held it for a whole interval and gives it to waiting ones. */
  private redistribute(): void {
    const links = this.links();
    if (links.length <= this.maxInFlight || this.backoffLevel > 0) {
      if (links.length <= this.maxInFlight) this.updateRdy();
      return;
    }
    const now = Date.now();
    if (links.some((l) => l.rdy === 0)) {
      for (const l of links) if (l.rdy > 0 && now - l.rdyChangedAt >= this.redistributeMs) this.setRdy(l, 0);
    }
    this.fillScarceRdy();
  }

  // ---- backoff ----

  /** go-nsq's backoff state machine: signals during a backoff timeout are ignored. */
  private backoffSignal(failure: boolean): void {
    if (this.backoffTimer !== null) return;
    if (failure) this.backoffLevel = Math.min(this.backoffLevel + 1, this.maxBackoffLevel);
    else if (this.backoffLevel > 0) this.backoffLevel--;
    else return;
    if (this.backoffLevel === 0) {
      this.emit('resume');
      this.updateRdy();
      return;
    }
    const delayMs = backoffDelayMs(this.backoffLevel, {
      minMs: this.options.backoffMinDelayMs ?? 1_000,
      maxMs: this.options.backoffMaxDelayMs ?? 120_000,
    });
    this.stopRedistribution();
    this.backoffTimer = setTimeout(() => this.probe(), delayMs);
    for (const l of this.links()) this.setRdy(l, 0);
    this.emit('backoff', { level: this.backoffLevel, delayMs });
  }

  /** After a backoff delay: RDY 1 on one random connection; its outcome decides what follows. */
  private probe(): void {
    this.backoffTimer = null;
    if (this.isClosing) return;
    const links = this.links();
    if (links.length === 0) return;
    const choice = links[Math.floor(Math.random() * links.length)] as Link;
    this.setRdy(choice, 1);
  }

  // ---- async iteration ----

  /**
   * Iterates over messages as they arrive (connecting if needed). Each message must be finished
   * or requeued by the loop body. Leaving the loop (`break`, `return`, a throw) closes the
   * consumer gracefully; the iteration ends when the consumer is closed.
   */
  [Symbol.asyncIterator](): AsyncIterator<Message<T>, undefined> {
    // A failed connect() ends the loop with its error (endIteration), rather than a silent wait.
    void this.connect().catch(() => undefined);
    return {
      next: () => {
        const msg = this.buffered.shift();
        if (msg !== undefined) return new Promise((resolve) => this.yieldMessage(msg, resolve));
        if (this.iteratorEnded) {
          const err = this.connectError;
          this.connectError = null; // thrown once; later calls just say done
          return err === null ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(err);
        }
        return new Promise((resolve, reject) => this.nextWaiters.push({ resolve, reject }));
      },
      return: async () => {
        const closed = this.close();
        // The loop was left with this message unanswered: give it back now, not at its timeout
        // (closing first, so it is not given up on its last attempt either).
        const abandoned = this.lastYielded;
        if (abandoned !== null && !abandoned.hasResponded) abandoned.requeue(0, false);
        await closed;
        return { value: undefined, done: true };
      },
    };
  }

  private yieldMessage(msg: Message<T>, resolve: (r: IteratorResult<Message<T>, undefined>) => void): void {
    this.lastYielded = msg;
    resolve({ value: msg, done: false });
  }

  private endIteration(): void {
    this.iteratorEnded = true;
    const err = this.connectError;
    for (const w of this.nextWaiters.drain()) {
      if (err !== null) {
        this.connectError = null;
        w.reject(err);
      } else {
        w.resolve({ value: undefined, done: true });
      }
    }
  }

  // ---- shutdown and stats ----

  /**
   * Closes gracefully: stops discovery, sends CLS to every nsqd and waits for CLOSE_WAIT (no more
   * deliveries), requeues messages the iterator never handed out, waits for in-flight messages
   * to be finished or requeued, then closes the connections. Whatever is still unanswered at the
   * `closeTimeoutMs` deadline is left to nsqd's msg timeout, so nothing is lost. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.isClosing = true;
    const deadline = Date.now() + (this.options.closeTimeoutMs ?? 30_000);
    for (const t of [this.lookupTimer, this.backoffTimer, this.touchTimer]) if (t !== null) clearTimeout(t);
    this.stopRedistribution();
    this.lookupTimer = this.backoffTimer = this.touchTimer = null;
    for (const node of this.nodes.values()) if (node.retryTimer !== null) clearTimeout(node.retryTimer);

    const links = this.links();
    await withDeadline(
      Promise.all(
        links.map(
          (l) =>
            new Promise<void>((resolve) => {
              l.closeWait = resolve;
              if (l.closeWaitReceived || l.conn.isClosed) resolve();
              else l.conn.write(encodeCommand('CLS'));
            }),
        ),
      ),
      deadline,
    );
    // No more deliveries: give back what the iterator never handed out, then end iteration.
    for (const msg of this.buffered.drain()) msg.requeue(0, false);
    this.endIteration();
    if (this.inFlight > 0) {
      await withDeadline(
        new Promise<void>((resolve) => {
          this.drainWaiter = resolve;
        }),
        deadline,
      );
    }
    await Promise.all(
      [...this.nodes.values()].map((node) => {
        const link = node.link;
        if (link === null || link.conn.isClosed) return Promise.resolve();
        return new Promise<void>((resolve) => {
          link.closeWait = resolve;
          // A subscribed link flushes its last FIN/REQ first; a half-open one is just dropped.
          if (link.subscribed) link.conn.end();
          else link.conn.destroy(null);
        });
      }),
    );
  }

  /** Current connections, RDY, in-flight and backoff state, and message counters. */
  stats(): ConsumerStats {
    return {
      connections: this.links().map((l) => ({ address: l.node.address, rdy: l.rdy, inFlight: l.inFlight })),
      inFlight: this.inFlight,
      backoffLevel: this.backoffLevel,
      ...this.counters,
    };
  }
}

/** Resolves when `promise` settles or at `deadline` (epoch ms), whichever is first. */
async function withDeadline(promise: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | null = null;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    }),
  ]);
  if (timer !== null) clearTimeout(timer);
}
