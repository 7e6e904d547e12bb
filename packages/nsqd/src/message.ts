import { messageIdHex } from '@nsq-ts/protocol';
import type { HeapEntry } from './min-heap.js';

/**
 * One published message as a channel holds it once taken from the log (from the memory tail's
 * columns or a disk read), and as every socket that carries it reads it. Immutable.
 *
 * The body is a range of the buffer it arrived in (an MPUB's messages share their MPUB body)
 * rather than a Buffer view of its own, the ID is two numbers whose hex text is built only
 * when a consumer needs it as a key, and the timestamp is one number.
 */
export class MessageRecord {
  private idText: string | null = null;

  constructor(
    /** Position in the topic log. */
    readonly offset: number,
    readonly idHi: number,
    readonly idLo: number,
    /** The buffer holding the body at [start, start + length). */
    readonly data: Buffer,
    readonly start: number,
    readonly length: number,
    /** Publish time, Unix ms (the wire timestamp and e2e latency). */
    readonly publishedAtMs: number,
    /** Monotonic ms before which a DPUB message may not be delivered; 0 when not deferred. */
    readonly deliverAfter: number,
  ) {}

  /** The 16 hex characters of the ID, as clients echo them in FIN/REQ/TOUCH. */
  get id(): string {
    if (this.idText === null) this.idText = messageIdHex(this.idHi, this.idLo);
    return this.idText;
  }

  /** The body as a Buffer view (off the hot path: the TCP writer copies from `data`). */
  get body(): Buffer {
    return this.data.subarray(this.start, this.start + this.length);
  }

  /**
   * The same message with a buffer of its own, for one that is kept long (deferred, restored)
   * while its body is a small range of a large buffer (a disk read chunk): it would otherwise
   * pin the whole chunk.
   */
  compact(): MessageRecord {
    if (this.data.length <= 4 * this.length + 4096) return this;
    const r = new MessageRecord(
      this.offset,
      this.idHi,
      this.idLo,
      Buffer.from(this.body),
      0,
      this.length,
      this.publishedAtMs,
      this.deliverAfter,
    );
    r.idText = this.idText;
    return r;
  }
}

/** Where a channel holds a message that left the log and is not finished. */
export type MessageState = 'inFlight' | 'requeued' | 'deferred';

/**
 * A channel's copy of a message once it left the log. The same object moves between the
 * states, carrying its attempts; `heapKey` is its in-flight deadline or its due time,
 * depending on which heap holds it.
 */
export class ChannelMessage implements HeapEntry {
  state: MessageState = 'requeued';
  heapKey = 0;
  heapIndex = -1;
  /** The connection it is in flight to; null when not in flight. */
  owner: object | null = null;
  /** Monotonic ms of the current delivery (bounds TOUCH by --max-msg-timeout). */
  deliveredAt = 0;

  constructor(
    public record: MessageRecord,
    public attempts: number,
  ) {}
}
