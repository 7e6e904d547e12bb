import type { Codec } from './codecs.js';

/** What a message reports back to the consumer that delivered it. @internal */
export interface MessageOwner {
  finish(msg: Message<unknown>): void;
  requeue(msg: Message<unknown>, delayMs: number | undefined, backoff: boolean): void;
  touch(msg: Message<unknown>): void;
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
  /** @internal The connection that owns the message (FIN/REQ/TOUCH must use it). */
  readonly owner: MessageOwner;
  /** @internal */
  readonly connectionRef: object;
  private readonly codec: Codec<T>;
  private decoded: { value: T } | null = null;
  private responded = false;
  /** @internal Last TOUCH (or delivery) time, for automatic touching. */
  touchedAt: number;

  /** @internal */
  constructor(
    id: string,
    attempts: number,
    timestamp: bigint,
    rawBody: Buffer,
    codec: Codec<T>,
    owner: MessageOwner,
    connectionRef: object,
    nsqdAddress: string,
  ) {
    this.id = id;
    this.attempts = attempts;
    this.timestamp = timestamp;
    this.rawBody = rawBody;
    this.codec = codec;
    this.owner = owner;
    this.connectionRef = connectionRef;
    this.nsqdAddress = nsqdAddress;
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
    this.owner.finish(this as Message<unknown>);
  }

  /**
   * Gives the message back (REQ) for redelivery after `delayMs` (default: the consumer's
   * `requeueDelayMs` × attempts, capped). With `backoff` (the default) the consumer also slows
   * down, as after a handler failure. On the last allowed attempt the consumer gives up instead.
   */
  requeue(delayMs?: number, backoff = true): void {
    if (this.responded) return;
    this.responded = true;
    this.owner.requeue(this as Message<unknown>, delayMs, backoff);
  }

  /** Resets the message's timeout on nsqd (TOUCH), for handlers slower than the msg timeout. */
  touch(): void {
    if (this.responded) return;
    this.touchedAt = Date.now();
    this.owner.touch(this as Message<unknown>);
  }
}
