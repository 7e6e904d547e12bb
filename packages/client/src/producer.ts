import { encodeMpubBody, ProtocolError } from '@nsq-ts/protocol';
import { backoffDelayMs } from './backoff.js';
import { bytesCodec, type Codec } from './codecs.js';
import { Connection, OK } from './connection.js';
import { PRODUCER_DEFAULTS, type Settings, withDefaults } from './defaults.js';
import { ClientError, ClientErrorCode, explainRefusal, isPermanentFailure, isTlsRequired } from './errors.js';
import { Fifo } from './fifo.js';
import { type Host, HostPool, HostState, type ProducerHostStatus } from './host-pool.js';
import { type Logger, resolveLogger } from './logger.js';
import { checkProducerOptions, type ProducerBaseOptions, type ProducerOptions } from './producer-options.js';
import { encodeBody, header, oversize, type PublishRequest } from './publish-request.js';
import { checkTopic } from './validate.js';

export type { ProducerHostStatus } from './host-pool.js';
export type { ProducerBaseOptions, ProducerCodecOption, ProducerOptions } from './producer-options.js';

/** Server errors that mean "this nsqd could not take it now", worth trying elsewhere. */
const RETRIABLE_CODES: ReadonlySet<string> = new Set(['E_PUB_FAILED', 'E_MPUB_FAILED', 'E_DPUB_FAILED']);

/**
 * Publishes over TCP V2, pipelined, one connection per nsqd; a lost connection is re-established with
 * backoff and its unanswered publishes are sent again. With several addresses it is a host pool:
 * epsilon-greedy by latency, retrying on another host, so an nsqd restart is invisible to callers.
 *
 * @typeParam T - the body type accepted by `publish`, turned into bytes by the codec.
 */
export class Producer<T = Buffer | string> {
  private readonly pool: HostPool;
  private readonly hosts: readonly Host[];
  private readonly codec: Codec<T>;
  private readonly options: ProducerBaseOptions;
  private readonly settings: Settings<typeof PRODUCER_DEFAULTS>;
  private readonly waiting = new Fifo<PublishRequest>();
  /** The oldest publish's deadline (all share publishTimeoutMs). */
  private deadlineTimer: NodeJS.Timeout | null = null;
  private started = false;
  private closed = false;
  /** Why the producer stopped by itself (a failed connect(), every nsqd refusing it). */
  private stopError: Error | null = null;
  private closing: Promise<void> | null = null;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly logger: Logger;

  /** Throws a ClientError E_INVALID_ARGUMENT naming a bad option; connects lazily. */
  constructor(options: ProducerOptions<T>) {
    const o: ProducerBaseOptions & { codec?: Codec<T> } = options;
    const addresses = checkProducerOptions(o);
    this.codec = o.codec ?? (bytesCodec as unknown as Codec<T>);
    this.options = o;
    this.settings = withDefaults(o, PRODUCER_DEFAULTS);
    this.pool = new HostPool(addresses, this.settings.epsilon);
    this.hosts = this.pool.hosts;
    this.logger = resolveLogger(o.logger);
  }

  /**
   * Resolves once one connection is ready. Rejects when every address failed, or at once for a
   * failure no retry can fix, and then the producer is stopped (publishes get E_CLOSED). Publishing
   * without it connects too, retrying until each publish's timeout.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.hosts.some((h) => h.state === HostState.Ready)) return Promise.resolve();
    const ready = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    this.start();
    return ready;
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    for (const host of this.hosts) this.open(host);
  }

  /** PUB; resolves on `OK`. A bad topic or body rejects with E_INVALID_ARGUMENT before a byte is sent. */
  publish(topic: string, body: T): Promise<void> {
    try {
      this.checkOpen();
      checkTopic(topic);
      const bytes = encodeBody(this.codec, body, '');
      return this.enqueue('PUB', header('PUB', topic, null, bytes.length), bytes, bytes.length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** MPUB: atomic; bodies checked as {@link publish}'s, their total against --max-body-size. */
  publishMany(topic: string, bodies: readonly T[]): Promise<void> {
    try {
      this.checkOpen();
      checkTopic(topic);
      if (!Array.isArray(bodies) || bodies.length === 0) {
        throw new ClientError(ClientErrorCode.InvalidArgument, 'publishMany needs a non-empty array of bodies');
      }
      let largest = 0;
      const encoded = bodies.map((b, i) => {
        const bytes = encodeBody(this.codec, b, ` ${i}`);
        largest = Math.max(largest, bytes.length);
        return bytes;
      });
      const body = encodeMpubBody(encoded);
      return this.enqueue('MPUB', header('MPUB', topic, null, body.length), body, largest);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** DPUB: delivered after `delayMs` (up to nsqd's --max-req-timeout). */
  publishDeferred(topic: string, delayMs: number, body: T): Promise<void> {
    try {
      this.checkOpen();
      checkTopic(topic);
      if (!Number.isInteger(delayMs) || delayMs < 0) {
        throw new ClientError(
          ClientErrorCode.InvalidArgument,
          `invalid delay ${String(delayMs)} (an integer of ms >= 0)`,
        );
      }
      const bytes = encodeBody(this.codec, body, '');
      return this.enqueue('DPUB', header('DPUB', topic, delayMs, bytes.length), bytes, bytes.length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  status(): ProducerHostStatus[] {
    return this.pool.status();
  }

  /** Waits up to `closeTimeoutMs` for outstanding publishes; those still waiting for a connection get E_CLOSED. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    const closedError = this.closedError();
    for (const w of this.readyWaiters) w.reject(closedError);
    this.readyWaiters = [];
    for (const req of this.waiting.drain()) req.reject(this.stopError ?? closedError);
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    for (const host of this.hosts) {
      if (host.retryTimer !== null) clearTimeout(host.retryTimer);
      host.retryTimer = null;
    }
    const deadline = Date.now() + this.settings.closeTimeoutMs;
    await Promise.all(
      this.hosts.map(async (host) => {
        const conn = host.conn;
        if (conn === null) return;
        if (host.state === HostState.Ready && host.sent.length > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
            host.onIdle = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        conn.destroy(null);
      }),
    );
  }

  private closedError(): ClientError {
    if (this.stopError === null) return new ClientError(ClientErrorCode.Closed, 'producer is closed');
    return new ClientError(ClientErrorCode.Closed, `producer stopped: ${this.stopError.message}`, {
      cause: this.stopError,
    });
  }

  private checkOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private enqueue(command: string, head: Buffer, body: Buffer, largestMessage: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req: PublishRequest = {
        header: head,
        body,
        command,
        largestMessage,
        resolve,
        reject,
        sends: 0,
        deadline: Date.now() + this.settings.publishTimeoutMs,
        sentAt: 0,
      };
      if (!this.started) this.start();
      this.dispatch(req);
      this.armDeadlineTimer();
    });
  }

  private dispatch(req: PublishRequest): void {
    const host = this.waiting.length === 0 ? this.pool.choose() : null;
    if (host === null) {
      this.waiting.push(req);
      return;
    }
    this.send(host, req);
  }

  private send(host: Host, req: PublishRequest): void {
    const conn = host.conn as Connection;
    const tooBig = oversize(req, conn.negotiated, conn.address);
    if (tooBig !== null) {
      req.reject(tooBig);
      return;
    }
    req.sends++;
    req.sentAt = performance.now();
    host.sent.push(req);
    conn.write(req.header);
    conn.write(req.body);
  }

  private drainWaiting(): void {
    while (this.waiting.length > 0) {
      const host = this.pool.choose();
      if (host === null) return;
      this.send(host, this.waiting.shift() as PublishRequest);
    }
  }

  /**
   * One timer for the oldest deadline (deadlines only grow). A sent publish past its deadline takes
   * its connection with it: replies are matched in order, and one that never comes blocks the pipeline.
   */
  private armDeadlineTimer(): void {
    if (this.deadlineTimer !== null || this.closed) return;
    let oldest = this.waiting.peek()?.deadline ?? Number.POSITIVE_INFINITY;
    for (const h of this.hosts) oldest = Math.min(oldest, h.sent.peek()?.deadline ?? Number.POSITIVE_INFINITY);
    if (oldest === Number.POSITIVE_INFINITY) return;
    this.deadlineTimer = setTimeout(() => this.expire(), Math.max(1, oldest - Date.now()));
  }

  private expire(): void {
    this.deadlineTimer = null;
    const now = Date.now();
    const keep: PublishRequest[] = [];
    for (const req of this.waiting.drain()) {
      if (req.deadline <= now) req.reject(this.timeoutError());
      else keep.push(req);
    }
    for (const req of keep) this.waiting.push(req);
    for (const h of this.hosts) {
      const head = h.sent.peek();
      if (head === undefined || head.deadline > now || h.conn === null) continue;
      const ms = this.settings.publishTimeoutMs;
      h.conn.destroy(
        new ClientError(ClientErrorCode.Timeout, `nsqd ${h.address} did not answer a publish within ${ms} ms`),
      );
    }
    this.armDeadlineTimer();
  }

  private timeoutError(): ClientError {
    const causes = this.hosts.map((h) => `${h.address}: ${h.lastError?.message ?? 'not ready'}`).join('; ');
    return new ClientError(
      ClientErrorCode.Timeout,
      `no nsqd accepted the publish within ${this.settings.publishTimeoutMs} ms (${causes})`,
    );
  }

  private open(host: Host): void {
    if (this.closed) return;
    host.state = HostState.Connecting;
    host.retryTimer = null;
    host.refusal = null;
    const conn = new Connection(host.address, { identify: this.options, dialTimeoutMs: this.settings.dialTimeoutMs });
    host.conn = conn;
    conn.onDrain = () => this.drainWaiting();
    conn
      .open({
        onMessage: () => conn.destroy(new ClientError(ClientErrorCode.UnexpectedResponse, 'message on a producer')),
        onResponse: (text) => this.onResponse(host, text),
        onError: (err) => this.onError(host, err),
        onClose: (err) => this.onClose(host, conn, err),
      })
      .then(
        () => {
          if (this.closed) {
            conn.destroy(null);
            return;
          }
          host.state = HostState.Ready;
          host.failures = 0;
          host.lastError = null;
          for (const w of this.readyWaiters) w.resolve();
          this.readyWaiters = [];
          this.drainWaiting();
        },
        (err: Error) => {
          host.lastError = err;
          this.markDown(host, isPermanentFailure(err));
          const failed = (h: Host) => h.state === HostState.Failed || (h.state === HostState.Down && h.failures > 0);
          if (this.closed || !this.hosts.every(failed)) return;
          // No nsqd could be reached: a pending connect() fails, and so does the producer; and a
          // producer every nsqd refused for good stops whether or not connect() was called.
          if (this.readyWaiters.length > 0 || this.hosts.every((h) => h.state === HostState.Failed)) this.stop(err);
        },
      );
  }

  private stop(err: Error): void {
    this.stopError = err;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
    if (waiters.length === 0) this.logger.error(`producer stopped: ${err.message}`);
    void this.close();
  }

  private markDown(host: Host, permanent: boolean): void {
    host.failures++;
    if (permanent) {
      host.state = HostState.Failed;
      if (!this.closed) this.logger.error(`${host.lastError?.message}; not retrying nsqd ${host.address}`);
      return;
    }
    host.state = HostState.Down;
    if (this.closed || host.retryTimer !== null) return;
    const delay = backoffDelayMs(host.failures, {
      minMs: this.settings.reconnectMinDelayMs,
      maxMs: this.settings.reconnectMaxDelayMs,
    });
    this.logger.warn(`${host.lastError?.message}; retrying in ${delay} ms`);
    host.retryTimer = setTimeout(() => this.open(host), delay);
    // Reconnecting alone does not keep the process alive: a waiting publish's deadline timer does.
    host.retryTimer.unref();
  }

  private onResponse(host: Host, text: string): void {
    const req = host.sent.shift();
    if (text !== OK || req === undefined) {
      // An unmatched reply desynchronizes the pipeline: start over on a fresh connection.
      if (req !== undefined) this.retryOrReject(req, null);
      host.conn?.destroy(new ClientError(ClientErrorCode.UnexpectedResponse, `unexpected reply ${text}`));
      return;
    }
    host.measured(performance.now() - req.sentAt);
    req.resolve();
    if (host.sent.length === 0) host.onIdle?.();
  }

  private onError(host: Host, frame: ProtocolError): void {
    const err = explainRefusal(frame, host.address);
    // nsqd closes the connection after a fatal error: stop choosing this host right away.
    if (err.fatal) host.state = HostState.Connecting;
    // A TLS-only nsqd refuses every publish of a plaintext connection: do not reconnect to it.
    if (isTlsRequired(frame)) host.refusal = err;
    const req = host.sent.shift();
    if (req === undefined) return;
    if (RETRIABLE_CODES.has(err.code)) this.retryOrReject(req, err);
    else req.reject(err);
    if (host.sent.length === 0) host.onIdle?.();
  }

  private onClose(host: Host, conn: Connection, err: Error | null): void {
    if (host.conn !== conn) return;
    host.conn = null;
    host.lastError =
      host.refusal ?? err ?? new ClientError(ClientErrorCode.ConnectionClosed, `connection to ${host.address} closed`);
    const unanswered = host.sent.drain();
    host.onIdle?.();
    if (this.closed) {
      for (const req of unanswered) req.reject(host.lastError);
      host.state = HostState.Down;
      return;
    }
    this.markDown(host, host.refusal !== null);
    for (const req of unanswered) this.retryOrReject(req, host.lastError);
    if (this.hosts.every((h) => h.state === HostState.Failed)) this.stop(host.lastError);
  }

  private retryOrReject(req: PublishRequest, cause: Error | null): void {
    if (this.closed) {
      req.reject(new ClientError(ClientErrorCode.Closed, 'producer closed'));
    } else if (req.sends >= this.settings.maxPublishAttempts || Date.now() >= req.deadline) {
      req.reject(
        cause instanceof ClientError || cause instanceof ProtocolError
          ? cause
          : new ClientError(ClientErrorCode.ConnectionClosed, `publish failed after ${req.sends} attempts`, { cause }),
      );
    } else {
      this.dispatch(req);
    }
  }
}
