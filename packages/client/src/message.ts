import type { Codec } from './codecs.js';

/**
 * The subscribed connection a message arrived on: FIN, REQ and TOUCH must go back over it, since
 * nsqd only accepts them from the connection that holds the message in flight. @internal
 */
export interface MessageLink<T> {
  /** The address of the nsqd at the other end. */
  readonly address: string;
  /** The msg timeout negotiated for the connection, for automatic touching. */
  readonly msgTimeoutMs: number;
  finish(msg: Message<T>): void;
  requeue(msg: Message<T>, delayMs: number | undefined, backoff: boolean): void;
  touch(msg: Message<T>): void;
}

/**
 * A delivered message. Exactly one of `finish()` or `requeue()` should be called; later calls
 * are ignored. If neither is, nsqd redelivers it after the connection's msg timeout (and the
 * consumer's handler mode finishes it when the handler returns).
 */
export class Message<T> {
  /** The 16-character hex message ID, as nsqd sent it. */
  readonly id: string;
  /** Delivery count, 1 on the first delivery. */
  readonly attempts: number;
  /** Publish time, Unix nanoseconds. */
  readonly timestamp: bigint;
  /** The undecoded body bytes. */
  readonly rawBody: Buffer;
  /** The address of the nsqd that delivered the message. */
  readonly nsqdAddress: string;
  /** @internal The connection that delivered the message. */
  readonly link: MessageLink<T>;
  private readonly codec: Codec<T>;
  private decoded: { value: T } | null = null;
  private responded = false;
  /** @internal Last TOUCH (or delivery) time, for automatic touching. */
  touchedAt: number;

  /** @internal */
  constructor(id: string, attempts: number, timestamp: bigint, rawBody: Buffer, codec: Codec<T>, link: MessageLink<T>) {
    this.id = id;
    this.attempts = attempts;
    this.timestamp = timestamp;
    this.rawBody = rawBody;
    this.codec = codec;
    this.link = link;
    this.nsqdAddress = link.address;
    this.touchedAt = Date.now();
  }

  /** The body decoded with the consumer's codec (decoded once, on first access; may throw). */
  get body(): T {
    if (this.decoded === null) this.decoded = { value: this.codec.decode(this.rawBody) };
    return this.decoded.value;
  }

  /** Publish time in Unix milliseconds. */
  get timestampMs(): number {
    return Number(this.timestamp / 1_000_000n);
  }

  /** True once `finish()` or `requeue()` was called. */
  get hasResponded(): boolean {
    return this.responded;
  }

  /** Acknowledges the message (FIN): nsqd forgets it. */
  finish(): void {
    if (this.responded) return;
    this.responded = true;
    this.link.finish(this);
  }

  /**
   * Gives the message back (REQ) for redelivery after `delayMs` (default: the consumer's
   * `requeueDelayMs` × attempts, capped). With `backoff` (the default) the consumer also slows
   * down, as after a handler failure. On the last allowed attempt the consumer gives up instead.
   */
  requeue(delayMs?: number, backoff = true): void {
    if (this.responded) return;
    this.responded = true;
    this.link.requeue(this, delayMs, backoff);
  }

  /** Resets the message's timeout on nsqd (TOUCH), for handlers slower than the msg timeout. */
  touch(): void {
    if (this.responded) return;
    this.touchedAt = Date.now();
    this.link.touch(this);
  }
}
