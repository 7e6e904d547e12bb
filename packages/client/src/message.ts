import type { Codec } from './codecs.js';

/** FIN, REQ and TOUCH must go back over the connection holding the message. @internal */
export interface MessageLink<T> {
  readonly address: string;
  /** The msg timeout negotiated for the connection, for automatic touching. */
  readonly msgTimeoutMs: number;
  finish(msg: Message<T>): void;
  requeue(msg: Message<T>, delayMs: number | undefined, backoff: boolean): void;
  touch(msg: Message<T>): void;
}

/** Call `finish()` or `requeue()` once (later calls are ignored), or nsqd redelivers it after the msg timeout. */
export class Message<T> {
  /** The 16-character hex message ID, as nsqd sent it. */
  readonly id: string;
  /** 1 on the first delivery. */
  readonly attempts: number;
  /** Publish time, Unix nanoseconds. */
  readonly timestamp: bigint;
  readonly rawBody: Buffer;
  readonly nsqdAddress: string;
  /** @internal */
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

  /** Decoded with the consumer's codec on first access (may throw). */
  get body(): T {
    if (this.decoded === null) this.decoded = { value: this.codec.decode(this.rawBody) };
    return this.decoded.value;
  }

  get timestampMs(): number {
    return Number(this.timestamp / 1_000_000n);
  }

  get hasResponded(): boolean {
    return this.responded;
  }

  /** FIN: nsqd forgets it. */
  finish(): void {
    if (this.responded) return;
    this.responded = true;
    this.link.finish(this);
  }

  /**
   * REQ after `delayMs` (default: `requeueDelayMs` × attempts, capped); `backoff` (default true) also
   * slows the consumer down. On the last allowed attempt the consumer gives up instead.
   */
  requeue(delayMs?: number, backoff = true): void {
    if (this.responded) return;
    this.responded = true;
    this.link.requeue(this, delayMs, backoff);
  }

  /** TOUCH: resets the message's timeout on nsqd. */
  touch(): void {
    if (this.responded) return;
    this.touchedAt = Date.now();
    this.link.touch(this);
  }
}
