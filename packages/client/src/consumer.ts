import { EventEmitter } from 'node:events';
import { CLOSE_WAIT, decodeMessage, encodeCommand, isValidChannelName, isValidTopicName } from '@nsq-ts/protocol';
import { backoffDelayMs } from './backoff.js';
import { type Codec, rawCodec } from './codecs.js';
import { Connection, type IdentifyOptions } from './connection.js';
import { HOSTNAME, USER_AGENT } from './defaults.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { Fifo } from './fifo.js';
import { lookupProducers } from './lookup.js';
import { Message, type MessageOwner } from './message.js';

/** A message handler: resolve to finish the message, throw (or reject) to requeue it with backoff. */
export type MessageHandler<T> = (message: Message<T>) => unknown;

/** Options of a {@link Consumer}. Give `nsqdAddresses`, `lookupdHttpAddresses`, or both. */
export interface ConsumerOptions<T> extends IdentifyOptions {
  /** Topic to subscribe to. */
  topic: string;
  /** Channel to subscribe to. */
  channel: string;
  /** nsqd TCP addresses (`host:port`) to connect to directly. */
  nsqdAddresses?: readonly string[];
  /** nsqlookupd HTTP addresses (`host:port` or `http://host:port`) polled for the topic's nsqds. */
  lookupdHttpAddresses?: readonly string[];
  /** Messages in flight at once over all connections (default 1). */
  maxInFlight?: number;
  /** How bodies are decoded; defaults to {@link rawCodec} (Buffers). Required whenever `T` is not `Buffer`. */
  codec?: Codec<T>;
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
}

/** Events of a {@link Consumer}, with their listener signatures. */
export interface ConsumerEvents<T> {
  /** A delivered message; the handler's outcome finishes or requeues it. */
  message: MessageHandler<T>;
  /** A non-fatal problem: a handler error, a lookupd failure, an unexpected nsqd error frame. */
  error: (error: Error) => void;
  /** A message was given up after `maxAttempts`. */
  giveUp: (message: Message<T>) => void;
  /** Backoff started or continued: RDY 0 everywhere for `delayMs`, then a RDY 1 probe. */
  backoff: (info: { level: number; delayMs: number }) => void;
  /** Backoff ended: full RDY restored. */
  resume: () => void;
  /** A connection to an nsqd is subscribed. */
  connected: (address: string) => void;
  /** A connection to an nsqd closed (`error` is null for a clean close). */
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
  /** Messages received, finished, requeued, given up. */
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
  private readonly options: ConsumerOptions<T>;
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
  private readonly nextWaiters = new Fifo<(r: IteratorResult<Message<T>, undefined>) => void>();
  private iteratorEnded = false;

  constructor(options: ConsumerOptions<T>) {
    if (!isValidTopicName(options.topic)) throw new RangeError(`invalid topic "${options.topic}"`);
    if (!isValidChannelName(options.channel)) throw new RangeError(`invalid channel "${options.channel}"`);
    const nsqds = options.nsqdAddresses ?? [];
    const lookupds = options.lookupdHttpAddresses ?? [];
    if (nsqds.length === 0 && lookupds.length === 0) {
      throw new RangeError('Consumer needs nsqdAddresses or lookupdHttpAddresses');
    }
    this.options = options;
    this.codec = options.codec ?? (rawCodec as unknown as Codec<T>);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.redistributeMs = options.rdyRedistributeIntervalMs ?? 1_000;
    const minMs = options.backoffMinDelayMs ?? 1_000;
    const maxMs = options.backoffMaxDelayMs ?? 120_000;
    this.maxBackoffLevel = Math.max(1, Math.ceil(Math.log2(maxMs / minMs)) + 1);
    if (options.handler !== undefined) this.handlers.push(options.handler);
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
    // Without an 'error' listener errors are dropped rather than thrown from a socket callback.
    if (this.events.listenerCount(event) > 0) this.events.emit(event, ...args);
  }

  /**
   * Connects to the configured nsqds and queries the lookupds once. Resolves when each first
   * attempt is over; rejects only when there are no lookupds and no nsqd could be reached (the
   * consumer keeps retrying until `close()`).
   */
  connect(): Promise<void> {
    if (this.isClosing) return Promise.reject(new ClientError(ClientErrorCode.Closed, 'consumer is closed'));
    this.started ??= this.start();
    return this.started;
  }

  private async start(): Promise<void> {
    const attempts = [...this.nodes.values()].map((n) => this.open(n));
    const lookup = (this.options.lookupdHttpAddresses ?? []).length > 0 ? this.pollLookupds() : null;
    const results = await Promise.allSettled(attempts);
    if (lookup !== null) await lookup;
    else {
      const failure = results.find((r) => r.status === 'rejected');
      if (results.length > 0 && results.every((r) => r.status === 'rejected') && failure !== undefined) {
        throw (failure as PromiseRejectedResult).reason;
      }
    }
  }

  // ---- discovery ----

  private async pollLookupds(): Promise<void> {
    const lookupds = this.options.lookupdHttpAddresses ?? [];
    const timeoutMs = this.options.lookupdTimeoutMs ?? 5_000;
    const token = this.options.lookupdAuthToken ?? '';
    const results = await Promise.allSettled(
      lookupds.map((l) => lookupProducers(l, this.options.topic, timeoutMs, token)),
    );
    const opens: Promise<void>[] = [];
    for (const r of results) {
      if (r.status === 'rejected') {
        this.emit('error', r.reason instanceof Error ? r.reason : new Error(String(r.reason)));
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
    if (this.isClosing) return;
    const interval = this.options.lookupdPollIntervalMs ?? 60_000;
    // Jitter spreads many consumers' polls so they do not hit the lookupds in step.
    this.lookupTimer = setTimeout(
      () => {
        this.lookupTimer = null;
        void this.pollLookupds();
      },
      interval + Math.random() * interval * 0.3,
    );
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
          onError: (err) => {
            if (err.fatal) link.subscribed = false;
            this.emit('error', err);
          },
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
          this.emit('error', err);
          this.scheduleReconnect(node, true);
          throw err;
        },
      );
  }

  private scheduleReconnect(node: Node, failedAttempt: boolean): void {
    if (this.isClosing || this.nodes.get(node.address) !== node) return;
    // A discovered nsqd that cannot be reached is forgotten; the next lookup brings it back.
    if (node.discovered && failedAttempt) {
      this.nodes.delete(node.address);
      return;
    }
    node.failures++;
    const delay = backoffDelayMs(node.failures, {
      minMs: this.options.reconnectMinDelayMs ?? 250,
      maxMs: this.options.reconnectMaxDelayMs ?? 30_000,
    });
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
      this.scheduleReconnect(node, false);
      this.updateRdy();
    }
  }

  private onResponse(link: Link, text: string): void {
    if (text === CLOSE_WAIT) {
      link.closeWaitReceived = true;
      link.closeWait?.();
      return;
    }
    this.emit('error', new ClientError(ClientErrorCode.UnexpectedResponse, `${link.node.address} sent ${text}`));
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
    if (waiter !== undefined) waiter({ value: msg, done: false });
    else this.buffered.push(msg);
  }

  private async runHandlers(msg: Message<T>): Promise<void> {
    if (this.options.autoTouch) this.trackActive(msg);
    try {
      for (const handler of this.handlers) await handler(msg);
      msg.finish();
    } catch (err) {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
      msg.requeue(undefined, true);
    }
  }

  /** @internal MessageOwner */
  finish(msg: Message<unknown>): void {
    this.write(msg, encodeCommand(FIN, [msg.id]));
    this.counters.finished++;
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
    this.write(msg, encodeCommand(REQ, [msg.id, String(Math.max(0, Math.round(delay)))]));
    this.counters.requeued++;
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
    } catch (err) {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
    this.write(msg, encodeCommand(FIN, [msg.id]));
    this.settled(msg, failed ? -1 : 0);
  }

  /** Writes on the connection that delivered `msg`, if it is still up (else nsqd redelivers). */
  private write(msg: Message<unknown>, command: Buffer): void {
    const link = msg.connectionRef as Link;
    if (!link.conn.isClosed) link.conn.write(command);
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
    void this.connect().catch((err: unknown) => this.emit('error', err as Error));
    return {
      next: () => {
        const msg = this.buffered.shift();
        if (msg !== undefined) return Promise.resolve({ value: msg, done: false });
        if (this.iteratorEnded) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.nextWaiters.push(resolve));
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  private endIteration(): void {
    this.iteratorEnded = true;
    for (const w of this.nextWaiters.drain()) w({ value: undefined, done: true });
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
