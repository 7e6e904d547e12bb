import { EventEmitter } from 'node:events';
import { CLOSE_WAIT, decodeMessage, ErrorCode, encodeCommand, type ProtocolError } from '@nsq-ts/protocol';
import { AutoTouch } from './auto-touch.js';
import { backoffDelayMs } from './backoff.js';
import { type Codec, rawCodec } from './codecs.js';
import { Connection } from './connection.js';
import { Link, type LinkOwner, Node } from './consumer-link.js';
import {
  type ConsumerBaseOptions,
  type ConsumerEvents,
  type ConsumerOptions,
  type ConsumerStats,
  checkConsumerOptions,
  type MessageHandler,
} from './consumer-options.js';
import { CONSUMER_DEFAULTS, type Settings, withDefaults } from './defaults.js';
import { ClientError, ClientErrorCode, isPermanentFailure } from './errors.js';
import { type Logger, resolveLogger } from './logger.js';
import { lookupProducers } from './lookup.js';
import { Message } from './message.js';
import { MessageStream } from './message-stream.js';
import { type Outcome, type RdyPlan, RdyPolicy } from './rdy-policy.js';

const FIN = 'FIN';
const REQ = 'REQ';

export type {
  ConsumerBaseOptions,
  ConsumerCodecOption,
  ConsumerEvents,
  ConsumerOptions,
  ConsumerStats,
  MessageHandler,
} from './consumer-options.js';

/**
 * Consumes a channel from nsqds given directly or found through nsqlookupd, one connection each.
 * Messages come through `on('message', handler)` / the `handler` option (finished when it resolves,
 * requeued when it throws) or `for await (const msg of consumer)` (the body must answer each).
 *
 * @typeParam T - the decoded body type (`message.body`), produced by the codec.
 */
export class Consumer<T = Buffer> {
  private readonly options: ConsumerBaseOptions<T>;
  private readonly settings: Settings<typeof CONSUMER_DEFAULTS>;
  private readonly logger: Logger;
  private readonly codec: Codec<T>;
  private readonly events = new EventEmitter();
  private readonly handlers: MessageHandler<T>[] = [];
  private readonly nodes = new Map<string, Node<T>>();
  private readonly policy: RdyPolicy;
  private readonly owner: LinkOwner<T> = {
    finish: (link, msg) => this.finish(link, msg),
    requeue: (link, msg, delayMs, backoff) => this.requeue(link, msg, delayMs, backoff),
  };
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private isClosing = false;

  private inFlight = 0;
  private drainWaiter: (() => void) | null = null;
  private readonly counters = { received: 0, finished: 0, requeued: 0, givenUp: 0 };

  private backoffTimer: NodeJS.Timeout | null = null;
  private rotateTimer: NodeJS.Timeout | null = null;
  private lookupTimer: NodeJS.Timeout | null = null;
  private readonly autoTouch: AutoTouch<T> | null;
  private readonly stream = new MessageStream<T>();
  /** Reconnects of connect()'s first attempts, held until it knows whether anything answered. */
  private deferredRetries: Array<() => void> | null = null;

  /** Throws a ClientError E_INVALID_ARGUMENT naming a bad option. */
  constructor(options: ConsumerOptions<T>) {
    const o: ConsumerBaseOptions<T> & { codec?: Codec<T> } = options;
    const { nsqds } = checkConsumerOptions(o);
    this.options = o;
    this.settings = withDefaults(o, CONSUMER_DEFAULTS);
    this.logger = resolveLogger(o.logger);
    this.codec = o.codec ?? (rawCodec as unknown as Codec<T>);
    this.policy = new RdyPolicy({
      maxInFlight: this.settings.maxInFlight,
      rotateIntervalMs: this.settings.rdyRedistributeIntervalMs,
      backoff: { minMs: this.settings.backoffMinDelayMs, maxMs: this.settings.backoffMaxDelayMs },
    });
    this.autoTouch = o.autoTouch === true ? new AutoTouch<T>() : null;
    if (o.handler !== undefined) this.handlers.push(o.handler);
    for (const address of nsqds) this.nodes.set(address, new Node<T>(address, false));
  }

  /** `message` listeners are handlers whose outcome settles the message. */
  on<E extends keyof ConsumerEvents<T>>(event: E, listener: ConsumerEvents<T>[E]): this {
    if (event === 'message') this.handlers.push(listener as MessageHandler<T>);
    else this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

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

  private userCodeFailed(caught: unknown, where: string): void {
    const err = caught instanceof Error ? caught : new Error(String(caught));
    this.logger.error(`${where}: ${err.stack ?? err.message}`);
    this.emit('error', err);
  }

  private report(err: Error, level: 'warn' | 'error' = 'warn'): void {
    this.logger[level](err.message);
    this.emit('error', err);
  }

  /**
   * Resolves when each first attempt is over and something answered (an nsqd, or a lookupd, which may
   * list no nsqd yet). Rejects when nothing could be reached, and the consumer is then closed.
   */
  connect(): Promise<void> {
    if (this.isClosing)
      return Promise.reject(this.stream.failure ?? new ClientError(ClientErrorCode.Closed, 'consumer is closed'));
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
    this.stream.failure = err;
    await this.close();
    throw err;
  }

  private async pollLookupds(): Promise<Error[]> {
    const lookupds = this.options.lookupdHttpAddresses ?? [];
    const timeoutMs = this.settings.lookupdTimeoutMs;
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
        const node = new Node<T>(address, true);
        this.nodes.set(address, node);
        opens.push(this.open(node).catch(() => undefined));
      }
    }
    await Promise.all(opens);
    if (this.isClosing) return errors;
    const interval = this.settings.lookupdPollIntervalMs;
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

  private open(node: Node<T>): Promise<void> {
    node.retryTimer = null;
    const conn = new Connection(node.address, { identify: this.options, dialTimeoutMs: this.settings.dialTimeoutMs });
    const link = new Link<T>(node, conn, this.owner);
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
          this.connectionsChanged();
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

  /** Retry with backoff, or forget the node: a refusal no retry fixes, or a discovered nsqd (lookups bring it back). */
  private scheduleReconnect(node: Node<T>, failedAttempt: boolean, err: Error | null): void {
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
      minMs: this.settings.reconnectMinDelayMs,
      maxMs: this.settings.reconnectMaxDelayMs,
    });
    this.logger.warn(`${reason}; reconnecting in ${delay} ms`);
    node.retryTimer = setTimeout(() => {
      void this.open(node).catch(() => undefined);
    }, delay);
  }

  private onClose(link: Link<T>, err: Error | null): void {
    link.subscribed = false;
    link.rdy = 0;
    link.closeWait?.();
    const node = link.node;
    if (node.link === link) node.link = null;
    this.emit('disconnected', node.address, err);
    if (!this.isClosing) {
      this.scheduleReconnect(node, false, err);
      this.connectionsChanged();
    }
  }

  /** A FIN/REQ failure (timed out, already answered) undoes its counter; a fatal one means nsqd is closing. */
  private onErrorFrame(link: Link<T>, err: ProtocolError): void {
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

  private onResponse(link: Link<T>, text: string): void {
    if (text === CLOSE_WAIT) {
      link.closeWaitReceived = true;
      link.closeWait?.();
      return;
    }
    this.report(new ClientError(ClientErrorCode.UnexpectedResponse, `nsqd ${link.node.address} sent ${text}`));
  }

  private links(): Link<T>[] {
    const out: Link<T>[] = [];
    for (const node of this.nodes.values()) if (node.link?.subscribed) out.push(node.link);
    return out;
  }

  private onMessage(link: Link<T>, data: Buffer): void {
    const d = decodeMessage(data);
    const msg = new Message<T>(d.id, d.attempts, d.timestamp, d.body, this.codec, link);
    link.inFlight++;
    this.inFlight++;
    this.counters.received++;
    const maxAttempts = this.settings.maxAttempts;
    if (maxAttempts > 0 && msg.attempts > maxAttempts) {
      void this.giveUp(link, msg, false);
      return;
    }
    if (this.handlers.length > 0) {
      void this.runHandlers(msg);
      return;
    }
    if (this.stream.isEnded) {
      // Nobody will read it any more: give it straight back.
      msg.requeue(0, false);
      return;
    }
    this.autoTouch?.track(msg);
    this.stream.push(msg);
  }

  private async runHandlers(msg: Message<T>): Promise<void> {
    this.autoTouch?.track(msg);
    try {
      for (const handler of this.handlers) await handler(msg);
      msg.finish();
    } catch (caught) {
      this.userCodeFailed(caught, `handler failed for message ${msg.id} from nsqd ${msg.nsqdAddress}`);
      msg.requeue(undefined, true);
    }
  }

  private finish(link: Link<T>, msg: Message<T>): void {
    // A FIN that cannot be sent is not counted: nsqd will redeliver the message.
    if (link.send(encodeCommand(FIN, [msg.id]))) this.counters.finished++;
    this.settled(link, msg, 1);
  }

  private requeue(link: Link<T>, msg: Message<T>, delayMs: number | undefined, backoff: boolean): void {
    const { maxAttempts, requeueDelayMs, maxRequeueDelayMs } = this.settings;
    if (maxAttempts > 0 && msg.attempts >= maxAttempts && !this.isClosing) {
      void this.giveUp(link, msg, backoff);
      return;
    }
    const delay = delayMs ?? Math.min(requeueDelayMs * msg.attempts, maxRequeueDelayMs);
    if (link.send(encodeCommand(REQ, [msg.id, String(Math.max(0, Math.round(delay)))]))) {
      this.counters.requeued++;
    }
    this.settled(link, msg, backoff ? -1 : 0);
  }

  private async giveUp(link: Link<T>, msg: Message<T>, failed: boolean): Promise<void> {
    this.counters.givenUp++;
    try {
      await this.options.onGiveUp?.(msg);
      this.emit('giveUp', msg);
    } catch (caught) {
      this.userCodeFailed(caught, `onGiveUp failed for message ${msg.id}`);
    }
    this.logger.warn(`gave up message ${msg.id} from nsqd ${msg.nsqdAddress} after ${msg.attempts} attempts`);
    link.send(encodeCommand(FIN, [msg.id]));
    this.settled(link, msg, failed ? -1 : 0);
  }

  private settled(link: Link<T>, msg: Message<T>, outcome: Outcome): void {
    link.inFlight--;
    this.inFlight--;
    this.autoTouch?.forget(msg);
    if (this.inFlight === 0) this.drainWaiter?.();
    if (this.isClosing) return;
    this.apply(this.policy.settled(this.links(), outcome, Date.now()));
  }

  private connectionsChanged(): void {
    if (this.isClosing) return;
    this.apply(this.policy.connectionsChanged(this.links(), Date.now()));
  }

  private apply(plan: RdyPlan<Link<T>>): void {
    if (plan.resumed) this.emit('resume');
    const now = Date.now();
    for (const { conn: link, count } of plan.rdy) link.setRdy(count, now);
    if (plan.rotating && this.rotateTimer === null) {
      this.rotateTimer = setInterval(() => {
        this.apply(this.policy.rotate(this.links(), Date.now()));
      }, this.settings.rdyRedistributeIntervalMs);
    } else if (!plan.rotating) {
      this.stopRotation();
    }
    if (plan.backoff !== null) {
      this.backoffTimer = setTimeout(() => {
        this.backoffTimer = null;
        if (!this.isClosing) this.apply(this.policy.backoffElapsed(this.links(), Date.now()));
      }, plan.backoff.delayMs);
      this.emit('backoff', { level: plan.backoff.level, delayMs: plan.backoff.delayMs });
    }
  }

  private stopRotation(): void {
    if (this.rotateTimer === null) return;
    clearInterval(this.rotateTimer);
    this.rotateTimer = null;
  }

  /** Leaving the loop (`break`, `return`, a throw) closes the consumer gracefully. */
  [Symbol.asyncIterator](): AsyncIterator<Message<T>, undefined> {
    // A failed connect() ends the loop with its error (stream.end), rather than a silent wait.
    void this.connect().catch(() => undefined);
    return {
      next: () => this.stream.next(),
      return: async () => {
        const closed = this.close();
        // The loop was left with this message unanswered: give it back now, not at its timeout
        // (closing first, so it is not given up on its last attempt either).
        this.stream.abandoned()?.requeue(0, false);
        await closed;
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * CLS, then waits for CLOSE_WAIT and in-flight messages up to `closeTimeoutMs`; what is still
   * unanswered then is left to nsqd's msg timeout, so nothing is lost. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.isClosing = true;
    const deadline = Date.now() + this.settings.closeTimeoutMs;
    for (const t of [this.lookupTimer, this.backoffTimer]) if (t !== null) clearTimeout(t);
    this.lookupTimer = this.backoffTimer = null;
    this.autoTouch?.stop();
    this.stopRotation();
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
    for (const msg of this.stream.takeBuffered()) msg.requeue(0, false);
    this.stream.end();
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

  stats(): ConsumerStats {
    return {
      connections: this.links().map((l) => ({ address: l.node.address, rdy: l.rdy, inFlight: l.inFlight })),
      inFlight: this.inFlight,
      backoffLevel: this.policy.backoffLevel,
      ...this.counters,
    };
  }
}

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
