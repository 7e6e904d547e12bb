import { encodeMpubBody, isValidTopicName, type ProtocolError } from '@nsq-ts/protocol';
import { backoffDelayMs } from './backoff.js';
import { bytesCodec, type Codec } from './codecs.js';
import { Connection, type IdentifyOptions, OK } from './connection.js';
import { HOSTNAME, USER_AGENT } from './defaults.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { Fifo } from './fifo.js';

/** Options of a {@link Producer}. Give `nsqdAddress`, `nsqdAddresses`, or both. */
export interface ProducerOptions<T> extends IdentifyOptions {
  /** One nsqd TCP address, `host:port`. */
  nsqdAddress?: string;
  /** Several nsqd TCP addresses: publishes go to the healthiest, fastest one (a host pool). */
  nsqdAddresses?: readonly string[];
  /**
   * How bodies are encoded; defaults to {@link bytesCodec} (Buffer as is, string as UTF-8).
   * Required whenever `T` is not `Buffer | string`.
   */
  codec?: Codec<T>;
  /** Deadline for connecting and the IDENTIFY handshake (default 5000 ms). */
  dialTimeoutMs?: number;
  /** First reconnect delay after a failure (default 250 ms); doubles per failure, with jitter. */
  reconnectMinDelayMs?: number;
  /** Upper bound of the reconnect delay (default 30000 ms). */
  reconnectMaxDelayMs?: number;
  /**
   * How long a publish may wait for a usable connection, across reconnects and retries, before
   * it is rejected with `E_TIMEOUT` (default 30000 ms).
   */
  publishTimeoutMs?: number;
  /**
   * How many times one publish is sent before a connection loss is reported to the caller
   * (default 5). A publish whose connection drops before nsqd answered is sent again, to
   * another host when there is one, so delivery is at least once.
   */
  maxPublishAttempts?: number;
  /** Share of publishes sent to a random healthy host rather than the fastest (default 0.1). */
  epsilon?: number;
  /** How long `close()` waits for outstanding publishes to be answered (default 5000 ms). */
  closeTimeoutMs?: number;
}

interface PublishRequest {
  /** Command line plus the 4-byte body size. */
  header: Buffer;
  body: Buffer;
  resolve: () => void;
  reject: (error: Error) => void;
  sends: number;
  deadline: number;
  sentAt: number;
}

const HostState = { Idle: 0, Connecting: 1, Ready: 2, Down: 3 } as const;
type HostState = (typeof HostState)[keyof typeof HostState];

/** Server errors that mean "this nsqd could not take it now", worth trying elsewhere. */
const RETRIABLE_CODES: ReadonlySet<string> = new Set(['E_PUB_FAILED', 'E_MPUB_FAILED', 'E_DPUB_FAILED']);

/** One nsqd of the pool: its connection, the publishes it has not answered, its health. */
class Host {
  readonly address: string;
  state: HostState = HostState.Idle;
  conn: Connection | null = null;
  readonly sent = new Fifo<PublishRequest>();
  /** Exponentially weighted publish round-trip time; 0 until measured (so new hosts get tried). */
  latencyMs = 0;
  failures = 0;
  retryTimer: NodeJS.Timeout | null = null;
  lastError: Error | null = null;
  /** Set by close(): called when the last outstanding publish is answered. */
  onIdle: (() => void) | null = null;

  constructor(address: string) {
    this.address = address;
  }
}

/** Snapshot of one pooled host, for monitoring. */
export interface ProducerHostStatus {
  address: string;
  /** True when connected and accepting publishes. */
  ready: boolean;
  /** Smoothed publish round-trip time in ms (0 until measured). */
  latencyMs: number;
  /** Consecutive connection failures. */
  failures: number;
  /** Publishes sent and not yet answered. */
  outstanding: number;
}

/**
 * Publishes to nsqd over TCP V2. Commands are pipelined on one connection per nsqd and their
 * replies matched in order; every publish returns a promise settled by nsqd's `OK` or error
 * frame. Publishing before the connection is ready queues; a lost connection is re-established
 * with exponential backoff and its unanswered publishes are sent again. With several addresses
 * the producer is a host pool: it picks hosts epsilon-greedily by recent latency, takes failing
 * hosts out of rotation until they reconnect, and retries on another host, so an nsqd restart
 * is invisible to callers.
 *
 * @typeParam T - the body type accepted by `publish`, turned into bytes by the codec.
 */
export class Producer<T = Buffer | string> {
  private readonly hosts: Host[];
  private readonly codec: Codec<T>;
  private readonly options: ProducerOptions<T>;
  private readonly waiting = new Fifo<PublishRequest>();
  private waitTimer: NodeJS.Timeout | null = null;
  private started = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly publishTimeoutMs: number;
  private readonly maxPublishAttempts: number;
  private readonly epsilon: number;

  constructor(options: ProducerOptions<T>) {
    const addresses = [...(options.nsqdAddresses ?? [])];
    if (options.nsqdAddress !== undefined) addresses.unshift(options.nsqdAddress);
    if (addresses.length === 0) throw new RangeError('Producer needs nsqdAddress or nsqdAddresses');
    this.hosts = [...new Set(addresses)].map((a) => new Host(a));
    this.codec = options.codec ?? (bytesCodec as unknown as Codec<T>);
    this.options = options;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 30_000;
    this.maxPublishAttempts = options.maxPublishAttempts ?? 5;
    this.epsilon = options.epsilon ?? 0.1;
  }

  /**
   * Connects to every nsqd. Resolves once one connection is ready; rejects with the last error
   * if every address failed its first attempt (they keep retrying in the background until
   * `close()`). Publishing calls this implicitly.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new ClientError(ClientErrorCode.Closed, 'producer is closed'));
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

  /** Publishes one message (PUB). Resolves on nsqd's `OK`. */
  publish(topic: string, body: T): Promise<void> {
    const bytes = this.codec.encode(body);
    const check = this.check(topic, bytes);
    if (check !== null) return Promise.reject(check);
    return this.enqueue(header('PUB', topic, null, bytes.length), bytes);
  }

  /** Publishes several messages atomically in one command (MPUB). Resolves on nsqd's `OK`. */
  publishMany(topic: string, bodies: readonly T[]): Promise<void> {
    if (bodies.length === 0) {
      return Promise.reject(new ClientError(ClientErrorCode.InvalidArgument, 'publishMany needs at least one body'));
    }
    const encoded = bodies.map((b) => this.codec.encode(b));
    for (const bytes of encoded) {
      const check = this.check(topic, bytes);
      if (check !== null) return Promise.reject(check);
    }
    const body = encodeMpubBody(encoded);
    return this.enqueue(header('MPUB', topic, null, body.length), body);
  }

  /** Publishes one message that nsqd delivers after `delayMs` (DPUB). Resolves on nsqd's `OK`. */
  publishDeferred(topic: string, delayMs: number, body: T): Promise<void> {
    if (!Number.isInteger(delayMs) || delayMs < 0) {
      return Promise.reject(new ClientError(ClientErrorCode.InvalidArgument, `invalid delay ${delayMs}`));
    }
    const bytes = this.codec.encode(body);
    const check = this.check(topic, bytes);
    if (check !== null) return Promise.reject(check);
    return this.enqueue(header('DPUB', topic, delayMs, bytes.length), bytes);
  }

  /** Health of each nsqd in the pool. */
  status(): ProducerHostStatus[] {
    return this.hosts.map((h) => ({
      address: h.address,
      ready: h.state === HostState.Ready,
      latencyMs: h.latencyMs,
      failures: h.failures,
      outstanding: h.sent.length,
    }));
  }

  /**
   * Stops accepting publishes, waits (up to `closeTimeoutMs`) for the outstanding ones to be
   * answered, then closes every connection. Publishes still waiting for a connection are rejected
   * with `E_CLOSED`. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    const closedError = new ClientError(ClientErrorCode.Closed, 'producer closed');
    for (const w of this.readyWaiters) w.reject(closedError);
    this.readyWaiters = [];
    for (const req of this.waiting.drain()) req.reject(closedError);
    if (this.waitTimer !== null) clearTimeout(this.waitTimer);
    for (const host of this.hosts) {
      if (host.retryTimer !== null) clearTimeout(host.retryTimer);
      host.retryTimer = null;
    }
    const deadline = Date.now() + (this.options.closeTimeoutMs ?? 5_000);
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

  private check(topic: string, bytes: Buffer): Error | null {
    if (this.closed) return new ClientError(ClientErrorCode.Closed, 'producer is closed');
    // Refused here rather than by nsqd, whose refusal would be fatal to the whole connection.
    if (!isValidTopicName(topic)) return new ClientError(ClientErrorCode.InvalidArgument, `invalid topic "${topic}"`);
    if (bytes.length === 0) return new ClientError(ClientErrorCode.InvalidArgument, 'empty message body');
    return null;
  }

  private enqueue(head: Buffer, body: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req: PublishRequest = {
        header: head,
        body,
        resolve,
        reject,
        sends: 0,
        deadline: Date.now() + this.publishTimeoutMs,
        sentAt: 0,
      };
      if (!this.started) this.start();
      this.dispatch(req);
    });
  }

  /** Sends to the best host, or parks the request until one is usable. */
  private dispatch(req: PublishRequest): void {
    const host = this.waiting.length === 0 ? this.choose() : null;
    if (host === null) {
      this.waiting.push(req);
      this.armWaitTimer();
      return;
    }
    this.send(host, req);
  }

  private send(host: Host, req: PublishRequest): void {
    const conn = host.conn as Connection;
    req.sends++;
    req.sentAt = performance.now();
    host.sent.push(req);
    conn.write(req.header);
    conn.write(req.body);
  }

  /** Epsilon-greedy: usually the lowest-latency ready host, sometimes a random one to re-measure. */
  private choose(): Host | null {
    let best: Host | null = null;
    let usable = 0;
    for (const h of this.hosts) {
      if (h.state !== HostState.Ready || h.conn === null || h.conn.congested) continue;
      usable++;
      if (best === null || h.latencyMs < best.latencyMs) best = h;
    }
    if (usable > 1 && Math.random() < this.epsilon) {
      let pick = Math.floor(Math.random() * usable);
      for (const h of this.hosts) {
        if (h.state !== HostState.Ready || h.conn === null || h.conn.congested) continue;
        if (pick-- === 0) return h;
      }
    }
    return best;
  }

  /** Moves parked publishes to hosts while any can take them. */
  private drainWaiting(): void {
    while (this.waiting.length > 0) {
      const host = this.choose();
      if (host === null) return;
      this.send(host, this.waiting.shift() as PublishRequest);
    }
  }

  /** One timer for all parked publishes: rejects the ones past their deadline. */
  private armWaitTimer(): void {
    if (this.waitTimer !== null || this.waiting.length === 0) return;
    const head = this.waiting.peek() as PublishRequest;
    this.waitTimer = setTimeout(
      () => {
        this.waitTimer = null;
        const now = Date.now();
        const keep: PublishRequest[] = [];
        for (const req of this.waiting.drain()) {
          if (req.deadline <= now) req.reject(this.timeoutError());
          else keep.push(req);
        }
        for (const req of keep) this.waiting.push(req);
        this.armWaitTimer();
      },
      Math.max(1, head.deadline - Date.now()),
    );
  }

  private timeoutError(): ClientError {
    const causes = this.hosts.map((h) => `${h.address}: ${h.lastError?.message ?? 'not ready'}`).join('; ');
    return new ClientError(ClientErrorCode.Timeout, `no nsqd accepted the publish in time (${causes})`);
  }

  private open(host: Host): void {
    if (this.closed) return;
    host.state = HostState.Connecting;
    host.retryTimer = null;
    const conn = new Connection(host.address, {
      identify: this.options,
      dialTimeoutMs: this.options.dialTimeoutMs ?? 5_000,
      userAgentDefault: USER_AGENT,
      hostnameDefault: HOSTNAME,
    });
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
          this.markDown(host);
          // connect() fails only when no host could be reached at all.
          if (this.hosts.every((h) => h.state === HostState.Down && h.failures > 0)) {
            for (const w of this.readyWaiters) w.reject(err);
            this.readyWaiters = [];
          }
        },
      );
  }

  private markDown(host: Host): void {
    host.state = HostState.Down;
    host.failures++;
    if (this.closed || host.retryTimer !== null) return;
    const delay = backoffDelayMs(host.failures, {
      minMs: this.options.reconnectMinDelayMs ?? 250,
      maxMs: this.options.reconnectMaxDelayMs ?? 30_000,
    });
    host.retryTimer = setTimeout(() => this.open(host), delay);
  }

  private onResponse(host: Host, text: string): void {
    const req = host.sent.shift();
    if (text !== OK || req === undefined) {
      // An unmatched reply desynchronizes the pipeline: start over on a fresh connection.
      if (req !== undefined) this.retryOrReject(req, null);
      host.conn?.destroy(new ClientError(ClientErrorCode.UnexpectedResponse, `unexpected reply ${text}`));
      return;
    }
    const rtt = performance.now() - req.sentAt;
    host.latencyMs = host.latencyMs === 0 ? rtt : host.latencyMs * 0.8 + rtt * 0.2;
    req.resolve();
    if (host.sent.length === 0) host.onIdle?.();
  }

  private onError(host: Host, err: ProtocolError): void {
    // nsqd closes the connection after a fatal error: stop choosing this host right away.
    if (err.fatal) host.state = HostState.Connecting;
    const req = host.sent.shift();
    if (req === undefined) return;
    if (RETRIABLE_CODES.has(err.code)) this.retryOrReject(req, err);
    else req.reject(err);
    if (host.sent.length === 0) host.onIdle?.();
  }

  private onClose(host: Host, conn: Connection, err: Error | null): void {
    if (host.conn !== conn) return;
    host.conn = null;
    host.lastError = err ?? new ClientError(ClientErrorCode.ConnectionClosed, `connection to ${host.address} closed`);
    const unanswered = host.sent.drain();
    host.onIdle?.();
    if (this.closed) {
      for (const req of unanswered) req.reject(host.lastError);
      host.state = HostState.Down;
      return;
    }
    this.markDown(host);
    for (const req of unanswered) this.retryOrReject(req, host.lastError);
  }

  /** Sends an unanswered publish again, unless it has used up its attempts or its time. */
  private retryOrReject(req: PublishRequest, cause: Error | null): void {
    if (this.closed) {
      req.reject(new ClientError(ClientErrorCode.Closed, 'producer closed'));
    } else if (req.sends >= this.maxPublishAttempts || Date.now() >= req.deadline) {
      req.reject(
        cause instanceof Error && 'code' in cause
          ? cause
          : new ClientError(ClientErrorCode.ConnectionClosed, `publish failed after ${req.sends} attempts`, { cause }),
      );
    } else {
      this.dispatch(req);
    }
  }
}

/** `NAME topic[ delay]\n` followed by the 4-byte body size. */
function header(name: string, topic: string, delayMs: number | null, bodyLength: number): Buffer {
  const line = delayMs === null ? `${name} ${topic}\n` : `${name} ${topic} ${delayMs}\n`;
  const out = Buffer.allocUnsafe(line.length + 4);
  out.write(line, 0, 'latin1');
  out.writeInt32BE(bodyLength, line.length);
  return out;
}
